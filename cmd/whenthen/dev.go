package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/redisx"
	"github.com/whenthen/whenthen/internal/service"
	"github.com/whenthen/whenthen/internal/syncx"
	"github.com/whenthen/whenthen/rules"
)

func init() {
	register(&command{name: "dev", summary: "broker, embedded Redis, the service on examples/ and a sample event stream, all in one", run: runDev})
}

// Where `whenthen dev` looks for its defaults, relative to the repository
// root (found from the working directory upwards).
const (
	devRulesPath  = "examples/automations"
	devSchemaPath = "examples/schema.yaml"
	devEventsPath = "examples/events.jsonl"
)

// devOptions are the settings of `whenthen dev`.
type devOptions struct {
	redisURL      string
	rules         []string
	schema        string
	events        string
	speed         float64
	listen        string
	metricsListen string
	once          bool
	settle        time.Duration
	logLevel      string
	logger        *slog.Logger // the service's, on stderr
	history       devHistory
}

// devPace is the pause between two events at --speed 1.
const devPace = 500 * time.Millisecond

func runDev(ctx context.Context, env *cmdEnv, args []string) int {
	env = syncStderr(env) // the services' loggers and dev's own messages share it
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var o devOptions
	var rulePaths stringList
	fs.StringVar(&o.redisURL, "redis-url", "", "use this Redis (redis://...) instead of an embedded one; keys get a fresh prefix per run")
	fs.Var(&rulePaths, "rules", "automation `PATH` (file or directory; repeatable); default "+devRulesPath)
	fs.StringVar(&o.schema, "schema", "", "schema `FILE` declaring custom fields; default "+devSchemaPath)
	fs.StringVar(&o.events, "events", "", "events `FILE` to stream (JSON Lines with time placeholders); default "+devEventsPath)
	fs.Float64Var(&o.speed, "speed", 1, "stream speed: `X` times 2 events a second; 0 sends them all at once")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "`ADDR` of the in-memory Kafka broker; port 0 picks a free one")
	fs.StringVar(&o.metricsListen, "metrics-listen", "127.0.0.1:0", "`ADDR` serving /metrics, /healthz and /readyz; port 0 picks a free one")
	fs.BoolVar(&o.once, "once", false, "exit once the stream is sent and the outputs settled: 0 if every automation completed a run, 1 if not")
	fs.BoolVar(&o.once, "exit-after-stream", false, "same as --once")
	fs.DurationVar(&o.settle, "settle-timeout", 30*time.Second, "with --once, how long to wait after the stream for every automation to run")
	fs.StringVar(&o.logLevel, "log-level", "warn", "the service's log level on stderr: debug, info, warn or error")
	o.history.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen dev [--rules PATH] [--schema FILE] [--events FILE] [--speed X] [--listen ADDR] [--redis-url URL] [--once]")
		fmt.Fprintln(env.stderr, "\nStarts an in-memory Kafka broker, an embedded Redis and the service on the")
		fmt.Fprintln(env.stderr, "example automations, streams the example events into crm.events, and prints")
		fmt.Fprintln(env.stderr, "the actions, runs and dead letters as they are written. Ctrl-C stops it.")
		fmt.Fprintln(env.stderr)
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fs.Usage()
		return 2
	}
	if o.speed < 0 {
		fmt.Fprintf(env.stderr, "whenthen dev: --speed must not be negative, got %v\n", o.speed)
		return 2
	}
	if o.settle <= 0 {
		fmt.Fprintf(env.stderr, "whenthen dev: --settle-timeout must be positive, got %v\n", o.settle)
		return 2
	}
	logger, err := daemon.NewLogger(env.stderr, "text", o.logLevel)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen dev: --log-level: %v\n", err)
		return 2
	}
	o.logger = logger
	o.rules = rulePaths
	if err := o.resolvePaths(); err != nil {
		fmt.Fprintf(env.stderr, "whenthen dev: %v\n", err)
		return 2
	}
	return o.run(ctx, env)
}

// resolvePaths fills in the default paths: examples/ of the repository
// that holds the working directory (`make run` runs from its root).
func (o *devOptions) resolvePaths() error {
	if len(o.rules) > 0 && o.events != "" {
		return nil
	}
	root, err := findRepoRoot()
	if err != nil {
		return err
	}
	if len(o.rules) == 0 {
		o.rules = []string{filepath.Join(root, devRulesPath)}
		if o.schema == "" {
			o.schema = filepath.Join(root, devSchemaPath)
		}
	}
	if o.events == "" {
		o.events = filepath.Join(root, devEventsPath)
	}
	return nil
}

// findRepoRoot returns the working directory or the nearest of its parents
// that holds the examples.
func findRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(filepath.Join(dir, devRulesPath)); err == nil && fi.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, devEventsPath)); err == nil {
				return dir, nil
			}
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no %s and %s in %s or above: run from the whenthen repository, or pass --rules and --events", devRulesPath, devEventsPath, wd)
		}
	}
}

func (o *devOptions) run(ctx context.Context, env *cmdEnv) int {
	out := &lockedWriter{w: env.stdout}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(env.stderr, "whenthen dev: "+format+"\n", args...)
		return 1
	}

	// The rules, loaded here as well as by the service: the stream resolves
	// date placeholders against them, and --once checks every automation.
	set, err := loadRules(o.schema, o.rules)
	if err != nil {
		var list rules.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(env.stderr, e.Error())
			}
			return 1
		}
		return fail("%v", err)
	}
	lines, err := readStream(o.events)
	if err != nil {
		return fail("events: %v", err)
	}
	for _, l := range lines { // placeholders and directives are checked before anything starts
		if err := checkLine(l, set); err != nil {
			return fail("%s:%d: %v", o.events, l.n, err)
		}
	}
	var want []string
	for _, a := range set.Automations {
		if a.Enabled {
			want = append(want, a.ID)
		}
	}

	// The broker.
	cluster, err := startBroker(o.listen, 1)
	if err != nil {
		return fail("%v", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	// Redis.
	redisURL, prefix := o.redisURL, "wt-dev:"
	if redisURL == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return fail("embedded redis: %v", err)
		}
		defer mr.Close()
		redisURL = "redis://" + mr.Addr() + "/0"
	} else {
		// A fresh prefix per run: the stream's event ids are fixed, and
		// would all be duplicates of the previous run's.
		var b [4]byte
		_, _ = rand.Read(b[:])
		prefix = "wt-dev:" + hex.EncodeToString(b[:]) + ":"
		// Registered before the service's Close, so it runs after it.
		defer func() {
			if err := redisx.DeletePrefixAt(redisURL, prefix, 10*time.Second); err != nil {
				fmt.Fprintf(env.stderr, "whenthen dev: removing the %s* keys from Redis: %v\n", prefix, err)
			}
		}()
	}

	// The service, as `whenthen run` starts it.
	svc, err := service.New(service.Options{
		Kafka: daemon.KafkaOptions{
			Brokers: brokers,
			Group:   "whenthen-dev",
			// Quick to start and to stop on one machine.
			MaxWait:           100 * time.Millisecond,
			HeartbeatInterval: 500 * time.Millisecond,
			CommitInterval:    100 * time.Millisecond,
		},
		Redis:         daemon.RedisOptions{URL: redisURL, Prefix: prefix},
		Rules:         o.rules,
		Schema:        o.schema,
		MetricsListen: o.metricsListen,
		Logger:        o.logger,
		// Dev state need not outlive the session.
		DedupTTL:        time.Hour,
		SnapshotTTL:     time.Hour,
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		var list rules.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(env.stderr, e.Error())
			}
			return 1
		}
		return fail("%v", err)
	}
	svcCtx, stopSvc := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSvc()
	svcDone := make(chan error, 1)
	go func() { svcDone <- svc.Run(svcCtx) }()
	stopService := func() {
		stopSvc()
		select {
		case err := <-svcDone:
			if err != nil {
				fmt.Fprintf(env.stderr, "whenthen dev: service: %v\n", err)
			}
		case <-time.After(15 * time.Second):
			fmt.Fprintln(env.stderr, "whenthen dev: the service did not stop within 15s; leaving it")
		}
		_ = svc.Close()
	}
	defer stopService()
	if env.reload != nil {
		go func() {
			for {
				select {
				case <-svcCtx.Done():
					return
				case <-env.reload:
					if err := svc.Reload(); err != nil {
						out.printf("%s rules NOT reloaded, the previous ones stay live: %v\n", clock(time.Time{}), err)
					} else {
						out.printf("%s rules reloaded (SIGHUP)\n", clock(time.Time{}))
					}
				}
			}
		}()
	}

	// The printer of outputs.
	watcher, err := watchOutputs(ctx, out, brokers, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic)
	if err != nil {
		return fail("%v", err)
	}
	defer watcher.Close(5 * time.Second)
	deliverer, err := startDevDeliver(env, out, brokers, redisURL, prefix, o.schema, o.logger)
	if err != nil {
		return fail("%v", err)
	}
	defer deliverer.Close()

	if err := waitReady(ctx, svc, 30*time.Second); err != nil {
		return fail("service not ready: %v", err)
	}
	if err := o.history.start(ctx, brokers, redisURL, prefix, o.rules, o.schema, o.logger); err != nil {
		return fail("history: %v", err)
	}
	defer o.history.close(env.stderr)
	sum := set.Summary()
	broker := brokers[0]
	out.printf("whenthen dev\n")
	out.printf("  broker    %s  (in memory; topics %s)\n", broker, strings.Join(brokerTopics(), ", "))
	if o.redisURL == "" {
		out.printf("  redis     %s  (embedded, in memory)\n", strings.TrimPrefix(redisURL, "redis://"))
	} else {
		out.printf("  redis     %s  (keys %s*, deleted at exit)\n", redactRedisURL(redisURL), prefix)
	}
	out.printf("  metrics   http://%s/metrics  (/healthz, /readyz)\n", svc.MetricsAddr())
	o.history.banner(out)
	out.printf("  rules     %s: %s\n", strings.Join(o.rules, ", "), sum)
	out.printf("%s", deliverer.banner())
	out.printf("  events    %s (%d events)\n", o.events, len(lines))
	out.printf("  watch     kcat -b %s -t %s -C\n", broker, actions.DefaultActionsTopic)
	out.printf("  send      kcat -b %s -t %s -P -K:   (lines of KEY:JSON on stdin)\n\n", broker, defaultEventsTopic)

	tick, err := newDevTicker(redisURL, prefix, svc, set, out)
	if err != nil {
		return fail("%v", err)
	}
	defer tick.Close()
	streamErr := streamEvents(ctx, out, broker, lines, set, o.speed, tick.rewind)
	if streamErr != nil && ctx.Err() == nil {
		return fail("stream: %v", streamErr)
	}
	if !o.once {
		if ctx.Err() == nil {
			out.printf("%s stream sent; still running (Ctrl-C to stop)\n", clock(time.Time{}))
		}
		select {
		case <-ctx.Done():
		case err := <-svcDone:
			svcDone <- err
			return fail("the service stopped: %v", err)
		}
		out.printf("%s stopping\n", clock(time.Time{}))
		return 0
	}
	if ctx.Err() != nil {
		out.printf("%s stopping\n", clock(time.Time{}))
		return fail("interrupted before the stream was sent")
	}
	missing := watcher.settle(ctx, want, time.Second, o.settle)
	out.printf("\n%s\n", watcher.summary())
	if len(missing) > 0 {
		fmt.Fprintf(env.stderr, "whenthen dev: no completed run of %d automation(s) within %v of the stream: %s\n",
			len(missing), o.settle, strings.Join(missing, ", "))
		return 1
	}
	out.printf("every automation (%d) completed a run\n", len(want))
	return deliverer.report(ctx, env, out, watcher, o.settle)
}

// waitReady polls the service's readiness until it is ready, ctx is done or
// timeout passes.
func waitReady(ctx context.Context, svc *service.Service, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := svc.Ready(ctx)
		if err == nil {
			return nil
		}
		if !syncx.Sleep(ctx, 100*time.Millisecond) {
			return err
		}
	}
}

// streamEvents sends lines to the input topic, one at a time, each
// resolved at the moment it is sent, pausing devPace/speed between them.
func streamEvents(ctx context.Context, out *lockedWriter, broker string, lines []streamLine, set *rules.Set, speed float64,
	tick func(ctx context.Context, id string, sent int) error) error {
	w := &kafka.Writer{
		Addr:         kafka.TCP(broker),
		Topic:        defaultEventsTopic,
		Balancer:     &kafka.Hash{},
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
	defer func() {
		// kafka-go's Writer.Close can hang; it has nothing left to flush.
		done := make(chan struct{})
		go func() { _ = w.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}()
	sent := 0
	for i, l := range lines {
		if i > 0 && speed > 0 {
			if !syncx.Sleep(ctx, time.Duration(float64(devPace)/speed)) {
				return ctx.Err()
			}
		}
		if l.tick != "" {
			if err := tick(ctx, l.tick, sent); err != nil {
				return fmt.Errorf("line %d: %w", l.n, err)
			}
			continue
		}
		now := time.Now()
		text, err := expandLine(l.text, now, set)
		if err != nil {
			return fmt.Errorf("line %d: %w", l.n, err)
		}
		ev := summarizeEvent(text)
		if err := w.WriteMessages(ctx, kafka.Message{Key: ev.key, Value: []byte(text)}); err != nil {
			return fmt.Errorf("line %d: %w", l.n, err)
		}
		sent++
		out.printf("%s EVENT  %s\n", clock(now), ev.desc)
	}
	return nil
}

// redactRedisURL shows a Redis URL without its password.
func redactRedisURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…@" + u[i+1:]
		}
	}
	return u
}
