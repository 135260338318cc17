package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/redisx"
)

// benchRedis is the Redis a suite runs against, and what it is.
type benchRedis struct {
	URL string
	// Kind says which Redis it is, for the report: "redis-server 7.0.15
	// (child process)", "miniredis (in process: no redis-server on PATH)"
	// or "given (--redis-url)".
	Kind string
	// Prefix is unique to the run; every key the suite writes starts
	// with it.
	Prefix string
	// PID is the redis-server's process id when the suite started it,
	// else 0.
	PID  int
	stop func()
}

// startRedis returns the Redis at url if it is not empty, else a
// redis-server started as a child process on a free port if one is on
// PATH, else an in-process miniredis.
func startRedis(ctx context.Context, url string) (*benchRedis, error) {
	prefix := "wt-bench:" + randomHex(4) + ":"
	if url != "" {
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis URL: %w", err)
		}
		if err := ping(ctx, o); err != nil {
			return nil, fmt.Errorf("redis at %s: %w", o.Addr, err)
		}
		r := &benchRedis{URL: url, Kind: "given (--redis-url)", Prefix: prefix}
		r.stop = func() { _ = deletePrefix(url, prefix, 30*time.Second) }
		return r, nil
	}
	if bin, err := exec.LookPath("redis-server"); err == nil {
		r, err := startRedisServer(ctx, bin)
		if err != nil {
			return nil, err
		}
		r.Prefix = prefix
		return r, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("miniredis: %w", err)
	}
	return &benchRedis{URL: "redis://" + mr.Addr() + "/0", Kind: "miniredis (in process: no redis-server on PATH)",
		Prefix: prefix, stop: mr.Close}, nil
}

// Close stops a Redis the suite started, or deletes the suite's keys from
// a given one.
func (r *benchRedis) Close() {
	if r != nil && r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

func startRedisServer(ctx context.Context, bin string) (*benchRedis, error) {
	dir, err := os.MkdirTemp("", "whenthen-bench-redis-")
	if err != nil {
		return nil, err
	}
	version := "redis-server"
	if out, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		// "Redis server v=7.0.15 sha=..."
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				version += " " + v
			}
		}
	}
	var lastErr error
	for range 5 { // another process may take the free port first
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		logPath := filepath.Join(dir, "redis.log")
		logf, err := os.Create(logPath)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
		cmd.Stdout, cmd.Stderr = logf, logf
		p, err := spawn(cmd)
		logf.Close()
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("starting redis-server: %w", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := waitRedis(ctx, addr, p); err != nil {
			p.kill()
			log, _ := os.ReadFile(logPath)
			lastErr = fmt.Errorf("redis-server on %s: %w\n%s", addr, err, log)
			continue
		}
		return &benchRedis{URL: "redis://" + addr + "/0", Kind: version + " (child process on " + addr + ")",
			PID: cmd.Process.Pid, stop: func() { p.stop(5 * time.Second); os.RemoveAll(dir) }}, nil
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func waitRedis(ctx context.Context, addr string, p *process) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.done:
			return errors.New("exited during startup")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, werr := c.Write([]byte("PING\r\n"))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if werr == nil && rerr == nil && strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("not answering PING after 10s")
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func ping(ctx context.Context, o *redis.Options) error {
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// newRedisClient returns a client of url.
func newRedisClient(url string) (*redis.Client, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	return redis.NewClient(o), nil
}

// deletePrefix removes every key starting with prefix from the Redis at url.
func deletePrefix(url, prefix string, timeout time.Duration) error {
	rdb, err := newRedisClient(url)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return redisx.DeletePrefix(ctx, rdb, prefix)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choosing a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// process is a started child and the goroutine that reaps it.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the child has exited and been reaped
	err  error         // Wait's error, set before done is closed
}

// spawn starts cmd from a goroutine locked to its OS thread until the
// child exits: on Linux the child gets SIGKILL when that thread ends
// (Pdeathsig), so a child never outlives a killed suite.
func spawn(cmd *exec.Cmd) (*process, error) {
	cmd.SysProcAttr = sysProcAttr()
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

func (p *process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}
