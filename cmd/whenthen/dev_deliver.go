package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/syncx"
)

// Environment variables that give `whenthen dev`'s briefs an AI endpoint
// (OpenAI-compatible); without them briefs are plain summaries.
const (
	envDevAIBaseURL = "WHENTHEN_DEV_AI_BASE_URL"
	envDevAIModel   = "WHENTHEN_DEV_AI_MODEL"
	envDevAIKey     = "WHENTHEN_DEV_AI_API_KEY"
)

// devDeliver is the deliverer of `whenthen dev`, in process, with its two
// local receivers: a webhook sink for flows and an SMTP sink (STARTTLS,
// a fresh self-signed certificate) for briefs. It prints what they
// receive, and every outcome that is not a delivery.
type devDeliver struct {
	svc   *delivery.Service
	hooks *sink.Webhook
	mail  *sink.SMTP
	dir   string
	stop  context.CancelFunc
	done  chan error

	mu       sync.Mutex
	outcomes int
	failed   int
}

// startDevDeliver starts the deliverer against the dev broker and Redis
// (keys under prefix), with destinations that route every flow to the
// webhook sink and every brief to the SMTP sink.
func startDevDeliver(env *cmdEnv, out *lockedWriter, brokers []string, redisURL, prefix, schema string, log *slog.Logger) (*devDeliver, error) {
	d := &devDeliver{done: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	var key [24]byte
	_, _ = rand.Read(key[:])
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key[:])
	smtpPass := base64.RawURLEncoding.EncodeToString(key[:12])
	secrets, err := webhook.ParseSecrets(secret)
	if err != nil {
		return nil, err
	}
	if d.hooks, err = sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: secrets, Keep: 1000, OnReceive: d.printCall(out)}); err != nil {
		return nil, fmt.Errorf("webhook sink: %w", err)
	}
	tlsCfg, certPEM, err := sink.SelfSigned()
	if err != nil {
		return nil, err
	}
	if d.mail, err = sink.NewSMTP("127.0.0.1:0", sink.SMTPOptions{TLS: tlsCfg, Username: "whenthen-dev", Password: smtpPass,
		OnReceive: d.printMail(out)}); err != nil {
		return nil, fmt.Errorf("SMTP sink: %w", err)
	}
	if d.dir, err = os.MkdirTemp("", "whenthen-dev-deliver-"); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(d.mail.Addr(), ":")
	ai := ""
	if base := env.getenv(envDevAIBaseURL); base != "" {
		ai = fmt.Sprintf("brief:\n  ai: {base_url: %q, model: %q, api_key_env: %s}\n", base, env.getenv(envDevAIModel), envDevAIKey)
	}
	cfg := fmt.Sprintf(`# whenthen dev: every flow to the webhook sink, every brief to the SMTP sink.
destinations:
  - name: dev-flows
    workspaces: ["*"]
    actions: [flow]
    webhook: {url: "%s/flows", secret_env: DEV_WEBHOOK_SECRET}
    retry: {initial: 200ms, max: 2s}
  - name: dev-briefs
    workspaces: ["*"]
    actions: [brief]
    email:
      smtp: {host: %s, port: %s, username: whenthen-dev, password_env: DEV_SMTP_PASSWORD, ca_file: %q}
      from: "whenthen dev <whenthen@localhost>"
      directory: {file: %q}
    retry: {initial: 200ms, max: 2s}
%s`, d.hooks.URL(), host, port, filepath.Join(d.dir, "ca.pem"), filepath.Join(d.dir, "users.yaml"), ai)
	// The example owners and users, at example addresses.
	users := "users:\n"
	for _, u := range []string{"u-3", "u-7", "u-9", "u-42"} {
		users += fmt.Sprintf("  - {id: %s, email: %s@acme.example}\n", u, u)
	}
	for name, data := range map[string]string{"deliver.yaml": cfg, "ca.pem": string(certPEM), "users.yaml": users} {
		if err := os.WriteFile(filepath.Join(d.dir, name), []byte(data), 0o600); err != nil {
			return nil, err
		}
	}
	vars := map[string]string{"DEV_WEBHOOK_SECRET": secret, "DEV_SMTP_PASSWORD": smtpPass, envDevAIKey: env.getenv(envDevAIKey)}
	d.svc, err = delivery.New(delivery.Options{
		Kafka: daemon.KafkaOptions{Brokers: brokers, MaxWait: 100 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
			CommitInterval: 100 * time.Millisecond},
		Redis:      daemon.RedisOptions{URL: redisURL, Prefix: prefix},
		Schema:     schema,
		ConfigFile: filepath.Join(d.dir, "deliver.yaml"),
		Env:        func(k string) string { return vars[k] },
		// The dev service has the metrics port; this one takes any.
		MetricsListen:   "127.0.0.1:0",
		Logger:          log.With("component", "deliver"),
		ShutdownTimeout: 5 * time.Second,
		PollInterval:    100 * time.Millisecond,
		DedupTTL:        time.Hour,
		OnOutcome:       d.printOutcome(out),
	})
	if err != nil {
		return nil, fmt.Errorf("deliverer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	go func() { d.done <- d.svc.Run(ctx) }()
	ok = true
	return d, nil
}

// banner is the setup's lines for dev's header.
func (d *devDeliver) banner() string {
	return fmt.Sprintf("  deliver   flows → webhook %s/flows (signed), briefs → SMTP %s (STARTTLS); outcomes on %s\n",
		d.hooks.URL(), d.mail.Addr(), actions.DefaultOutcomesTopic)
}

// printCall prints a webhook the sink received.
func (d *devDeliver) printCall(out *lockedWriter) func(sink.Request) {
	return func(r sink.Request) {
		var body struct {
			Data struct {
				Action actions.Action `json:"action"`
			} `json:"data"`
		}
		_ = json.Unmarshal(r.Body, &body)
		a := body.Data.Action
		what := a.Type
		if a.Flow != nil {
			what = fmt.Sprintf("flow %s → %s", a.Flow.ID, a.Flow.PersonID)
		}
		late := ""
		if !a.FiredAt.IsZero() {
			late = fmt.Sprintf(", %d ms after it fired", max(r.At.Sub(a.FiredAt).Milliseconds(), 0))
		}
		sig := "signature ok"
		if r.SigErr != nil {
			sig = "BAD SIGNATURE: " + r.SigErr.Error()
		}
		out.printf("%s DELIVER %s (%d%s; %s)\n", clock(r.At), what, r.Status, late, sig)
	}
}

// printMail prints a message the SMTP sink accepted.
func (d *devDeliver) printMail(out *lockedWriter) func(sink.Mail) {
	return func(m sink.Mail) {
		subj, err := new(mime.WordDecoder).DecodeHeader(m.Header("Subject"))
		if err != nil {
			subj = m.Header("Subject")
		}
		out.printf("%s DELIVER brief → %s %q\n", clock(m.At), strings.Join(m.To, ", "), subj)
	}
}

// printOutcome counts outcomes and prints those that are not deliveries.
func (d *devDeliver) printOutcome(out *lockedWriter) func(actions.Outcome) {
	return func(o actions.Outcome) {
		d.mu.Lock()
		d.outcomes++
		if o.Status == actions.StatusFailed {
			d.failed++
		}
		d.mu.Unlock()
		if o.Status == actions.StatusDelivered {
			return
		}
		status := o.Status
		if o.Reason != "" {
			status += "/" + o.Reason
		}
		out.printf("%s OUTCOME %s %s %s %s: %s\n", clock(o.At), status, o.Type, o.AutomationID, o.Destination, o.Detail)
	}
}

// settle waits until there is an outcome for each of n actions (one
// destination each) or timeout passes; it reports the outcomes and the
// failures.
func (d *devDeliver) settle(ctx context.Context, n int, timeout time.Duration) (outcomes, failed int) {
	deadline := time.Now().Add(timeout)
	for {
		d.mu.Lock()
		outcomes, failed = d.outcomes, d.failed
		d.mu.Unlock()
		if outcomes >= n || time.Now().After(deadline) || !syncx.Sleep(ctx, 50*time.Millisecond) {
			return outcomes, failed
		}
	}
}

// Close stops the deliverer and the sinks, and removes the config.
func (d *devDeliver) Close() {
	if d.stop != nil {
		d.stop()
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
		}
		_ = d.svc.Close()
	}
	if d.hooks != nil {
		_ = d.hooks.Close()
	}
	if d.mail != nil {
		_ = d.mail.Close()
	}
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}

// report waits (for --once) until every action the watcher saw has its
// outcome, prints how many, and returns the exit code: 0 when each was
// delivered.
func (d *devDeliver) report(ctx context.Context, env *cmdEnv, out *lockedWriter, w *devWatcher, timeout time.Duration) int {
	w.mu.Lock()
	n := w.actions
	w.mu.Unlock()
	outcomes, failed := d.settle(ctx, n, timeout)
	out.printf("%d of %d actions carried out (%d failed): %d webhook calls, %d emails\n", outcomes-failed, n, failed,
		d.hooks.Count(), len(d.mail.Mails()))
	if outcomes < n || failed > 0 {
		fmt.Fprintf(env.stderr, "whenthen dev: %d of %d actions have no outcome within %v, %d failed\n", n-outcomes, n, timeout, failed)
		return 1
	}
	return 0
}

// syncStderr returns env with its stderr serialised: dev's services log
// to it from their goroutines while dev writes its own messages.
func syncStderr(env *cmdEnv) *cmdEnv {
	e := *env
	e.stderr = &syncWriter{w: env.stderr}
	return &e
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
