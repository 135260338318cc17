package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/whenthen/whenthen/internal/childproc"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/service"
)

// ChildCommand starts `whenthen bench ARGS...` in a new process; Run
// passes "--child REQUEST". cmd/whenthen gives one running its own
// executable.
type ChildCommand func(ctx context.Context, args ...string) *exec.Cmd

// Modes of a child process.
const (
	// modeScenario loads a rule set and runs the match on it, then
	// prints a childResult.
	modeScenario = "scenario"
	// modeService and modePassthrough run the service, or a passthrough
	// (passthrough.go), until their stdin closes. They print a serverInfo
	// line first, and take commands on stdin: "profile NAME" starts a
	// CPU profile in ProfileDir/NAME.pprof, "stop" ends it.
	modeService     = "service"
	modePassthrough = "passthrough"
)

// childRequest is what a child process is asked to do.
type childRequest struct {
	Mode string `json:"mode"`

	// The scenario's workload and rule files (Dir; also the service's).
	Automations int    `json:"automations,omitempty"`
	Workspaces  int    `json:"workspaces,omitempty"`
	Seed        int64  `json:"seed,omitempty"`
	Dir         string `json:"dir,omitempty"`
	// Events to run through the indexed engine, within IndexedBudget;
	// through the naive one within NaiveBudget. 0: load only.
	Events        int           `json:"events,omitempty"`
	Batch         int           `json:"batch,omitempty"`
	IndexedBudget time.Duration `json:"indexed_budget,omitempty"`
	NaiveBudget   time.Duration `json:"naive_budget,omitempty"`
	// EvalBudget is the time of the run through `whenthen eval`'s path;
	// 0: none.
	EvalBudget time.Duration `json:"eval_budget,omitempty"`
	// Fanout makes the workload's conditions unselective.
	Fanout bool `json:"fanout,omitempty"`

	RedisURL string `json:"redis_url,omitempty"`
	// RedisPID is the redis-server's process id, for its CPU time; 0 if
	// unknown.
	RedisPID   int    `json:"redis_pid,omitempty"`
	Prefix     string `json:"prefix,omitempty"`
	ProfileDir string `json:"profile_dir,omitempty"`

	// The service's and the passthrough's broker and consumer group.
	Brokers []string `json:"brokers,omitempty"`
	Group   string   `json:"group,omitempty"`
	// AtEnd starts the passthrough's new group at the end of the input
	// topic rather than its start.
	AtEnd bool `json:"at_end,omitempty"`
	// Client is the passthrough's Kafka client, clientKafkaGo or
	// clientFranzGo; OutputsPerEvent the records it writes per event read
	// (passthrough.go).
	Client          string  `json:"client,omitempty"`
	OutputsPerEvent float64 `json:"outputs_per_event,omitempty"`
}

// childResult is what a scenario process prints.
type childResult struct {
	Load  LoadResult      `json:"load"`
	Match *ScenarioResult `json:"match,omitempty"`
}

// serverInfo is the first line a service or passthrough process prints.
type serverInfo struct {
	// MetricsAddr serves the service's /metrics.
	MetricsAddr string `json:"metrics_addr,omitempty"`
}

// RunChild is a child process of Run: `whenthen bench --child REQUEST`,
// with the JSON request Run gives it. It writes its results to stdout;
// the service and passthrough take commands on stdin and stop when it
// closes.
func RunChild(ctx context.Context, request string, stdin io.Reader, stdout io.Writer) error {
	var req childRequest
	dec := json.NewDecoder(strings.NewReader(request))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("bench child request: %w", err)
	}
	switch req.Mode {
	case modeScenario:
		res, err := runScenario(ctx, req)
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(res)
	case modeService, modePassthrough:
		return runServer(ctx, req, stdin, stdout)
	}
	return fmt.Errorf("bench child request: mode %q", req.Mode)
}

// runServer runs the service or the passthrough until stdin closes or
// ctx is done.
func runServer(ctx context.Context, req childRequest, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var info serverInfo
	var run func(context.Context) error
	if req.Mode == modeService {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "service")
		svc, err := service.New(service.Options{
			Kafka: daemon.KafkaOptions{Brokers: req.Brokers, Group: req.Group,
				// Commits close behind processing, for the drain's end.
				CommitInterval: 50 * time.Millisecond, LagInterval: -1},
			Redis:           daemon.RedisOptions{URL: req.RedisURL, Prefix: req.Prefix},
			Rules:           []string{req.Dir},
			MetricsListen:   "127.0.0.1:0",
			Logger:          log,
			ReloadInterval:  -1,
			ShutdownTimeout: 10 * time.Second,
		})
		if err != nil {
			return err
		}
		defer svc.Close()
		info.MetricsAddr = svc.MetricsAddr()
		run = svc.Run
	} else {
		run = func(ctx context.Context) error { return runPassthrough(ctx, req) }
	}
	if err := json.NewEncoder(stdout).Encode(info); err != nil {
		return err
	}

	// Commands, until stdin closes.
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case cmds <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopProfile := func() error { return nil }
	defer func() { _ = stopProfile() }()
	for {
		select {
		case line, ok := <-cmds:
			if !ok {
				cancel()
				return <-done
			}
			verb, arg, _ := strings.Cut(line, " ")
			if err := stopProfile(); err != nil {
				return err
			}
			stopProfile = func() error { return nil }
			switch verb {
			case "profile":
				var err error
				if stopProfile, err = startProfile(req.ProfileDir, arg); err != nil {
					return err
				}
			case "stop":
			default:
				return fmt.Errorf("bench child: unknown command %q", line)
			}
		case err := <-done:
			if ctx.Err() == nil && err == nil {
				err = errors.New("stopped by itself")
			}
			return err
		}
	}
}

// runInChild runs req in a scenario process and returns its result.
func runInChild(ctx context.Context, start ChildCommand, req childRequest, stderr io.Writer) (*childResult, error) {
	req.Mode = modeScenario
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	cmd := start(ctx, "--child", string(b))
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(orDiscard(stderr), &errb)
	p, err := childproc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting the scenario process: %w", err)
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Kill()
		return nil, ctx.Err()
	}
	if p.Err() != nil {
		return nil, fmt.Errorf("scenario process: %w: %s", p.Err(), strings.TrimSpace(lastLines(errb.String(), 5)))
	}
	var res childResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("scenario process printed %q: %w", shorten(out.String(), 200), err)
	}
	if req.Events > 0 && res.Match == nil {
		return nil, errors.New("scenario process returned no match result")
	}
	return &res, nil
}

// server is a running service or passthrough process.
type server struct {
	p     *childproc.Process
	stdin io.WriteCloser
	info  serverInfo
	errb  *bytes.Buffer
}

// startServer starts a service or passthrough process and waits for its
// first line.
func startServer(ctx context.Context, start ChildCommand, req childRequest, stderr io.Writer) (*server, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	// Not exec's CommandContext cancellation: the server stops when its
	// stdin closes, and drains.
	cmd := start(context.WithoutCancel(ctx), "--child", string(b))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// A pipe of our own: Wait, which the reaper calls at once, would
	// close exec's StdoutPipe under our read.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd.Stdout = w
	s := &server{stdin: stdin, errb: &bytes.Buffer{}}
	cmd.Stderr = io.MultiWriter(orDiscard(stderr), s.errb)
	s.p, err = childproc.Start(cmd)
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("starting the %s process: %w", req.Mode, err)
	}
	line := make(chan []byte, 1)
	go func() {
		b, _ := bufio.NewReader(r).ReadBytes('\n')
		line <- b
	}()
	select {
	case b := <-line:
		if err := json.Unmarshal(b, &s.info); err != nil {
			s.close(5 * time.Second)
			return nil, fmt.Errorf("%s process: %s", req.Mode, strings.TrimSpace(lastLines(s.errb.String(), 5)))
		}
		return s, nil
	case <-time.After(time.Minute):
		s.p.Kill()
		return nil, fmt.Errorf("%s process: no answer within a minute", req.Mode)
	case <-ctx.Done():
		s.p.Kill()
		return nil, ctx.Err()
	}
}

// send gives the server a command.
func (s *server) send(cmd string) error {
	_, err := fmt.Fprintln(s.stdin, cmd)
	return err
}

// close stops the server (it drains) and waits for it, killing it after
// timeout.
func (s *server) close(timeout time.Duration) error {
	s.stdin.Close()
	select {
	case <-s.p.Done():
	case <-time.After(timeout):
		s.p.Kill()
		return fmt.Errorf("did not stop within %v", timeout)
	}
	if s.p.Err() != nil {
		return fmt.Errorf("%w: %s", s.p.Err(), strings.TrimSpace(lastLines(s.errb.String(), 5)))
	}
	return nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
