package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/actions/writer"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/syncx"
)

// Defaults of Options.
const (
	DefaultGroup           = "whenthen-deliver"
	DefaultMetricsListen   = ":9465"
	DefaultPollInterval    = 250 * time.Millisecond
	DefaultStatsInterval   = 5 * time.Second
	DefaultDedupTTL        = 7 * 24 * time.Hour
	DefaultBatchSize       = 500
	readyTimeout           = 2 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	defaultReloadInterval  = 5 * time.Second
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("delivery: closed")

// Options configure a [Service]. Zero values take the defaults given with
// each field.
type Options struct {
	// Kafka: the brokers, TLS and SASL as for `whenthen run`. Group is
	// the deliverer's consumer group (default "whenthen-deliver");
	// ActionsTopic its input (default automations.actions); DLQTopic
	// receives the actions that failed (default automations.dlq).
	Kafka daemon.KafkaOptions
	// OutcomesTopic receives the outcomes; default automations.outcomes.
	OutcomesTopic string
	// Redis holds the queues and marks, and the engine's record snapshots
	// (read for payloads and briefs): the engine's Redis and prefix.
	Redis daemon.RedisOptions
	// Schema is the engine's schema file ("" for the standard fields):
	// snapshots are read with it.
	Schema string

	// ConfigFile holds the delivery config (Config: destinations, brief,
	// fields), read at New and again when it (or a file it names)
	// changes, or on Reload. Required. ConfigKeys are the file's other
	// top-level keys (the command's connection settings), skipped.
	ConfigFile string
	ConfigKeys []string
	// Env reads the secrets the config names; default os.Getenv.
	Env func(string) string

	// BatchSize is the most action records of one partition scheduled at
	// once; default 500.
	BatchSize int
	// MetricsListen serves /metrics, /healthz, /readyz; default ":9465".
	MetricsListen string

	// Logger receives the log; when nil one is built from LogFormat,
	// LogLevel and LogOutput as by daemon.NewLogger.
	Logger    *slog.Logger
	LogFormat string
	LogLevel  string
	LogOutput io.Writer

	// ShutdownTimeout bounds the drain; default 30s.
	ShutdownTimeout time.Duration
	// ReloadInterval is how often the config files are checked for
	// changes; default 5s; negative: never (Reload still works).
	ReloadInterval time.Duration
	// PollInterval is how often each destination's queue is checked for
	// due deliveries (new ones scheduled here wake it at once); default
	// 250ms.
	PollInterval time.Duration
	// StatsInterval is how often the pending gauges are read; default 5s.
	StatsInterval time.Duration
	// DedupTTL is how long final marks are kept (at least the actions
	// topic's retention); default 7 days.
	DedupTTL time.Duration
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// OnOutcome, if set, is called with every outcome written (dev prints
	// them; tests count them).
	OnOutcome func(actions.Outcome)
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	k := &o.Kafka
	if err := k.Validate(); err != nil {
		errs = append(errs, err)
	}
	if k.Group == "" {
		k.Group = DefaultGroup
	}
	if k.ActionsTopic == "" {
		k.ActionsTopic = actions.DefaultActionsTopic
	}
	if k.DLQTopic == "" {
		k.DLQTopic = actions.DefaultDLQTopic
	}
	if o.OutcomesTopic == "" {
		o.OutcomesTopic = actions.DefaultOutcomesTopic
	}
	if k.ActionsTopic == k.DLQTopic || k.ActionsTopic == o.OutcomesTopic || k.DLQTopic == o.OutcomesTopic {
		bad("the actions (%s), outcomes (%s) and dead-letter (%s) topics must differ", k.ActionsTopic, o.OutcomesTopic, k.DLQTopic)
	}
	if err := o.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Redis.URL == "" {
		o.Redis.URL = daemon.DefaultRedisURL
	}
	if o.Redis.Prefix == "" {
		o.Redis.Prefix = "wt:"
	}
	if o.ConfigFile == "" {
		bad("no delivery config file")
	}
	if o.Env == nil {
		o.Env = os.Getenv
	}
	def := func(d *time.Duration, v time.Duration, name string) {
		if *d < 0 && name != "reload interval" {
			bad("negative %s %v", name, *d)
		}
		if *d == 0 {
			*d = v
		}
	}
	def(&o.ShutdownTimeout, DefaultShutdownTimeout, "shutdown timeout")
	def(&o.ReloadInterval, defaultReloadInterval, "reload interval")
	def(&o.PollInterval, DefaultPollInterval, "poll interval")
	def(&o.StatsInterval, DefaultStatsInterval, "stats interval")
	def(&o.DedupTTL, DefaultDedupTTL, "dedup TTL")
	if o.BatchSize < 0 || o.BatchSize > 100_000 {
		bad("batch size %d: want 1 to 100000", o.BatchSize)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MetricsListen == "" {
		o.MetricsListen = DefaultMetricsListen
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		if err := daemon.ValidateLog(o.LogFormat, o.LogLevel); err != nil {
			errs = append(errs, err)
		}
	}
	return o, errors.Join(errs...)
}

// Service is `whenthen deliver`: it consumes action records, schedules a
// delivery per destination in Redis, and delivers them from per-destination
// dispatchers, writing one outcome per action and destination.
type Service struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry
	m    *metrics

	schema   *crm.Schema
	rdb      redis.UniversalClient
	store    *store.Redis
	q        queue
	writer   *writer.Writer
	consumer *consumer.Consumer
	kafka    interface{ CloseIdleConnections() }

	plan      atomic.Pointer[plan]
	reloadMu  sync.Mutex
	filesSeen string

	dmu      sync.Mutex
	disp     map[string]*dispatcher
	retiring []*dispatcher
	workCtx  context.Context // the dispatchers' context, once Run started

	smu   sync.Mutex
	stall map[string]error // batch steps being retried

	listener net.Listener
	http     *http.Server
	draining atomic.Bool

	life daemon.Lifecycle // Run once, Close idempotent
}

// New builds a deliverer: it reads the schema and the delivery config
// (failing with every error of the config), sets up the clients and binds
// the metrics address. It does not wait for Kafka or Redis.
func New(opts Options) (*Service, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("delivery: invalid options: %w", err)
	}
	log := o.Logger
	if log == nil {
		out := o.LogOutput
		if out == nil {
			out = os.Stderr
		}
		if log, err = daemon.NewLogger(out, o.LogFormat, o.LogLevel); err != nil {
			return nil, err
		}
	}
	s := &Service{opts: o, log: log, reg: prometheus.NewRegistry(), disp: map[string]*dispatcher{}, stall: map[string]error{}}
	s.life.Name, s.life.ErrClosed = "delivery", ErrClosed
	ok := false
	defer func() {
		if !ok {
			s.release(context.Background())
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.m, err = newMetrics(s.reg); err != nil {
		return nil, err
	}
	s.schema = crm.DefaultSchema()
	if o.Schema != "" {
		if s.schema, err = crm.LoadSchema(o.Schema); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
	}
	s.filesSeen = s.fingerprint()
	p, err := s.load()
	if err != nil {
		s.m.reloads.WithLabelValues("failure").Inc()
		return nil, err
	}
	s.setPlan(p)

	if s.rdb, err = daemon.RedisClient(o.Redis, log); err != nil {
		return nil, err
	}
	if s.store, err = store.NewRedis(s.rdb, o.Redis.Prefix, store.Options{Schema: s.schema, Logger: log.With("component", "snapshots")}); err != nil {
		return nil, err
	}
	s.q = queue{rdb: s.rdb, prefix: o.Redis.Prefix}

	dialer, transport, err := daemon.KafkaClients(o.Kafka)
	if err != nil {
		return nil, err
	}
	s.kafka = transport
	k := o.Kafka
	// The writer's actions and runs topics (the defaults) are never
	// written here.
	if s.writer, err = writer.New(writer.Options{Brokers: k.Brokers, DLQTopic: k.DLQTopic, OutcomesTopic: o.OutcomesTopic,
		Transport: transport, Registerer: s.reg, Logger: log.With("component", "producer")}); err != nil {
		return nil, err
	}
	if s.consumer, err = consumer.New(consumer.Options{
		Brokers: k.Brokers, GroupID: k.Group, Topic: k.ActionsTopic, Dialer: dialer, Transport: transport,
		BatchSize: o.BatchSize, CommitInterval: k.CommitInterval, LagInterval: k.LagInterval, MaxWait: k.MaxWait,
		HeartbeatInterval: k.HeartbeatInterval, SessionTimeout: k.SessionTimeout, RebalanceTimeout: k.RebalanceTimeout,
		DrainTimeout: o.ShutdownTimeout / 2,
		Registerer:   s.reg, Logger: log.With("component", "consumer"),
	}); err != nil {
		return nil, err
	}
	if s.listener, err = net.Listen("tcp", o.MetricsListen); err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	s.http = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	log.Info("delivery config loaded", "destinations", len(p.dests), "ai", p.brief.AIEnabled())
	ok = true
	return s, nil
}

// load reads and compiles the config file.
func (s *Service) load() (*plan, error) {
	c, err := readConfigFile(s.opts.ConfigFile, s.opts.ConfigKeys)
	if err != nil {
		return nil, err
	}
	return compile(c, s.opts.ConfigFile, s.schema, s.opts.Env)
}

func (s *Service) setPlan(p *plan) {
	s.plan.Store(p)
	s.m.reloads.WithLabelValues("success").Inc()
	s.m.lastReload.SetToCurrentTime()
}

// MetricsAddr is the address of /metrics, /healthz and /readyz.
func (s *Service) MetricsAddr() string { return s.listener.Addr().String() }

// Gatherer is the service's metrics registry.
func (s *Service) Gatherer() prometheus.Gatherer { return s.reg }

// Destinations are the names of the live destinations, in config order.
func (s *Service) Destinations() []string {
	var out []string
	for _, d := range s.plan.Load().dests {
		out = append(out, d.Name)
	}
	return out
}

// Run consumes and delivers until ctx is done or Close is called, then
// drains within ShutdownTimeout: the consumer finishes the batches it is
// scheduling and commits them; every dispatcher stops claiming, finishes
// its attempts in flight (jobs claimed but not started go back to their
// queue) and settles them. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	ctx, end, err := s.life.Start(ctx)
	if err != nil {
		return err
	}
	defer end()
	ctx, cancel := context.WithCancel(ctx) // also ended by a failing HTTP server
	defer cancel()

	s.log.Info("deliverer starting", "metrics", s.MetricsAddr(), "topic", s.opts.Kafka.ActionsTopic, "group", s.opts.Kafka.Group)
	httpErr := make(chan error, 1)
	go func() {
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			httpErr <- err
			cancel()
		}
	}()
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	s.dmu.Lock()
	s.workCtx = work
	s.applyLocked(s.plan.Load())
	s.dmu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { _ = s.consumer.Run(ctx, s.handle) })
	wg.Go(func() { s.statsLoop(ctx) })
	if s.opts.ReloadInterval > 0 {
		wg.Go(func() { s.watch(ctx) })
	}
	<-ctx.Done()

	start := time.Now()
	deadline := start.Add(s.opts.ShutdownTimeout)
	s.draining.Store(true)
	s.log.Info("deliverer draining", "timeout", s.opts.ShutdownTimeout)
	s.dmu.Lock()
	all := slices.Collect(func(yield func(*dispatcher) bool) {
		for _, d := range s.disp {
			if !yield(d) {
				return
			}
		}
	})
	all = append(all, s.retiring...)
	s.dmu.Unlock()
	for _, d := range all {
		d.stop()
	}
	stopWork := time.AfterFunc(s.opts.ShutdownTimeout*3/4, cancelWork)
	defer stopWork.Stop()
	for _, d := range all {
		select {
		case <-d.stopped:
		case <-time.After(time.Until(deadline)):
			s.log.Warn("a destination did not finish its deliveries in time", "destination", d.name)
		}
	}
	syncx.WaitTimeout(&wg, time.Until(deadline))
	rctx, rcancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
	defer rcancel()
	s.release(rctx)
	s.log.Info("deliverer stopped", "drain", time.Since(start).Round(time.Millisecond))
	select {
	case err := <-httpErr:
		return fmt.Errorf("delivery: metrics server: %w", err)
	default:
		return nil
	}
}

// applyLocked makes the dispatchers match p: a new destination gets one,
// one whose concurrency changed a new one (the old finishes what it
// holds), a removed one's stops; others take the new settings for their
// next attempts.
func (s *Service) applyLocked(p *plan) {
	if s.workCtx == nil {
		return
	}
	seen := map[string]bool{}
	for _, d := range p.dests {
		seen[d.Name] = true
		old := s.disp[d.Name]
		if old != nil && old.d.Load().fingerprint() == d.fingerprint() {
			old.d.Store(d)
			continue
		}
		if old != nil {
			old.stop()
			s.retiring = append(s.retiring, old)
		}
		nd := newDispatcher(s, d)
		s.disp[d.Name] = nd
		nd.start(s.workCtx)
	}
	for name, old := range s.disp {
		if !seen[name] {
			old.stop()
			s.retiring = append(s.retiring, old)
			delete(s.disp, name)
			s.m.forget(name)
			s.log.Warn("destination removed; its pending deliveries wait in Redis until a destination of that name is configured again", "destination", name)
		}
	}
	// Forget dispatchers that have stopped.
	kept := s.retiring[:0]
	for _, d := range s.retiring {
		select {
		case <-d.stopped:
		default:
			kept = append(kept, d)
		}
	}
	s.retiring = kept
}

// poke wakes the dispatcher of a destination.
func (s *Service) poke(name string) {
	s.dmu.Lock()
	d := s.disp[name]
	s.dmu.Unlock()
	if d != nil {
		d.poke()
	}
}

// Reload reads the delivery config again and, if it is valid, applies it;
// otherwise the old one stays live and the error (every problem, with
// FILE:LINE:COL) is logged and returned.
func (s *Service) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.filesSeen = s.fingerprint()
	return s.reloadLocked()
}

func (s *Service) reloadLocked() error {
	p, err := s.load()
	if err != nil {
		s.m.reloads.WithLabelValues("failure").Inc()
		s.log.Error("delivery config reload failed; the previous config stays live", "errors", strings.Split(err.Error(), "\n"))
		return fmt.Errorf("reload: %w", err)
	}
	s.setPlan(p)
	s.dmu.Lock()
	s.applyLocked(p)
	s.dmu.Unlock()
	s.log.Info("delivery config reloaded", "destinations", len(p.dests))
	return nil
}

// watch reloads when the config files change.
func (s *Service) watch(ctx context.Context) {
	t := time.NewTicker(s.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := s.fingerprint()
		s.reloadMu.Lock()
		if fp != s.filesSeen {
			s.filesSeen = fp
			s.log.Info("delivery config changed; reloading")
			_ = s.reloadLocked()
		}
		s.reloadMu.Unlock()
	}
}

// fingerprint describes the config file and the files it names (template,
// directories, CA files): sizes and modification times.
func (s *Service) fingerprint() string {
	files := []string{s.opts.ConfigFile}
	if c, err := readConfigFile(s.opts.ConfigFile, s.opts.ConfigKeys); err == nil {
		files = append(files, c.Brief.Template)
		if c.Brief.AI != nil {
			files = append(files, c.Brief.AI.CAFile)
		}
		for _, d := range c.Destinations {
			if d.Webhook != nil {
				files = append(files, d.Webhook.CAFile)
			}
			if d.Email != nil {
				files = append(files, d.Email.SMTP.CAFile)
				if d.Email.Directory != nil {
					files = append(files, d.Email.Directory.File, d.Email.Directory.CAFile)
				}
			}
			if d.Slack != nil {
				files = append(files, d.Slack.CAFile)
			}
		}
	}
	var b strings.Builder
	for _, f := range files {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d\n", f, fi.Size(), fi.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s:error\n", f)
		}
	}
	return b.String()
}

// statsLoop reads each destination's pending count and oldest age.
func (s *Service) statsLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.StatsInterval)
	defer t.Stop()
	for {
		s.UpdateStats(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// UpdateStats sets the pending gauges now (Run does every StatsInterval).
func (s *Service) UpdateStats(ctx context.Context) {
	now := s.opts.Clock()
	for _, d := range s.plan.Load().dests {
		sctx, cancel := context.WithTimeout(ctx, readyTimeout)
		n, oldest, err := s.q.stats(sctx, d.Name)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.m.redisErrors.WithLabelValues("stats").Inc()
			}
			continue
		}
		s.m.pending.WithLabelValues(d.Name).Set(float64(n))
		age := 0.0
		if !oldest.IsZero() {
			age = max(now.Sub(oldest).Seconds(), 0)
		}
		s.m.oldest.WithLabelValues(d.Name).Set(age)
	}
}

func (s *Service) setStall(step string, err error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if err == nil {
		delete(s.stall, step)
	} else {
		s.stall[step] = err
	}
}

// handler serves /metrics, /healthz and /readyz.
func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := s.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			msg := err.Error()
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			fmt.Fprintln(w, "not ready:", msg)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Ready returns nil when the deliverer can work: Redis and Kafka
// answering, no step stuck retrying, not shutting down.
func (s *Service) Ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	redisErr := make(chan error, 1)
	go func() { redisErr <- s.rdb.Ping(ctx).Err() }()
	kafkaErr := s.consumer.Ping(ctx)
	if err := <-redisErr; err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if kafkaErr != nil {
		return fmt.Errorf("kafka: %w", kafkaErr)
	}
	s.smu.Lock()
	for step, err := range s.stall {
		s.smu.Unlock()
		return fmt.Errorf("scheduling actions: %s: %w", step, err)
	}
	s.smu.Unlock()
	s.dmu.Lock()
	defer s.dmu.Unlock()
	for _, d := range s.disp {
		if err := d.Err(); err != nil {
			return err
		}
	}
	return nil
}

// release closes the writer, Redis, the Kafka transport and the HTTP
// server within ctx.
func (s *Service) release(ctx context.Context) {
	if s.writer != nil {
		if err := s.writer.Close(ctx); err != nil {
			s.log.Warn("closing the writer", "err", err)
		}
	}
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	if s.kafka != nil {
		s.kafka.CloseIdleConnections()
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
	}
	if s.listener != nil {
		_ = s.listener.Close()
	}
}

// Close stops the service: it cancels Run and waits for its drain, or
// releases what New opened. Idempotent.
func (s *Service) Close() error {
	return s.life.Close(s.opts.ShutdownTimeout, s.release)
}
