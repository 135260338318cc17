// Package history is the run history service that `whenthen history`
// starts: it consumes the runs, actions and delivery outcomes the engine
// and `whenthen deliver` write to Kafka (docs/outputs.md), stores them
// (package history/store, in PostgreSQL or an embedded SQLite file),
// deletes what is older than the retention, and serves the JSON API
// (package history/api), the page (package history/web), /metrics,
// /healthz and /readyz on one address.
//
// The consumer is the engine's (package ingest/consumer), one per topic, each in
// a consumer group of its own (GROUP-runs, GROUP-actions,
// GROUP-outcomes): each partition's records are decoded in order and
// written in one transaction per batch; the offsets are committed only
// after the database committed. Records already stored (a redelivery)
// are left as they are. A record that cannot be decoded is dead-lettered
// with its reason and counted, never retried. A database that fails
// stalls the consumer: the batch is written again, with backoff, until it
// succeeds, and /readyz says why meanwhile; nothing is lost.
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions/writer"
	enginestore "github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/history/api"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/history/check"
	"github.com/whenthen/whenthen/history/query"
	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/history/store/postgres"
	"github.com/whenthen/whenthen/history/store/sqlite"
	"github.com/whenthen/whenthen/history/web"
	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/syncx"
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("history: closed")

// Service is the run history service.
type Service struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry
	m    *metrics

	store     *store.Store
	rules     *ruleSet
	rdb       redis.UniversalClient
	transport *kafka.Transport
	dlq       *writer.Writer
	consumers []*topicConsumer

	listener net.Listener
	http     *http.Server

	draining atomic.Bool

	life daemon.Lifecycle // Run once, Close idempotent
}

// OpenStore opens the database of a DB setting (see ParseDB), applies its
// migrations and returns the store. The store's metrics go to reg (nil:
// none).
func OpenStore(ctx context.Context, db string, reg prometheus.Registerer, log *slog.Logger) (*store.Store, error) {
	kind, dsn, err := ParseDB(db)
	if err != nil {
		return nil, err
	}
	var d store.Driver
	switch kind {
	case DBPostgres:
		d, err = postgres.Open(ctx, dsn)
	default:
		d, err = sqlite.Open(dsn)
	}
	if err != nil {
		return nil, err
	}
	applied, err := d.Migrate(ctx)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("history database: %w", err)
	}
	if len(applied) > 0 && log != nil {
		log.Info("history database migrated", "driver", d.Name(), "applied", applied)
	}
	s, err := store.New(d, store.Options{Registerer: reg, Logger: log})
	if err != nil {
		d.Close()
		return nil, err
	}
	return s, nil
}

// New builds the service: it opens and migrates the database (waiting
// for it up to ShutdownTimeout: a database that does not answer at start
// is an error), loads the rules if any, and binds the listen address. It
// does not wait for Kafka or Redis.
func New(opts Options) (*Service, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("history: invalid options: %w", err)
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
	s := &Service{opts: o, log: log, reg: prometheus.NewRegistry()}
	s.life.Name, s.life.ErrClosed = "history", ErrClosed
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

	ctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if s.store, err = OpenStore(ctx, o.DB, s.reg, log.With("component", "store")); err != nil {
		return nil, err
	}

	if s.rules, err = newRuleSet(o.Rules, o.Schema, s.m, log.With("component", "rules")); err != nil {
		return nil, err
	}
	var state check.State
	if o.Redis.URL != "" && s.rules.compiler != nil {
		if s.rdb, err = daemon.RedisClient(o.Redis, log); err != nil {
			return nil, err
		}
		live, err := enginestore.NewRedis(s.rdb, o.Redis.Prefix, enginestore.Options{Schema: s.rules.compiler.Schema(),
			Limits: s.rules.compiler.Limits(), Logger: log.With("component", "check")})
		if err != nil {
			return nil, err
		}
		state = live
	}
	checker := check.New(s.rules.get, state, o.Clock, log.With("component", "check"))
	q := query.New(s.store, s.rules.get, checker, o.Clock)
	au, err := auth.New(auth.Options{Tokens: o.Tokens, SessionKey: o.SessionKey, Clock: o.Clock})
	if err != nil {
		return nil, err
	}
	pages, err := web.New(q, au, log.With("component", "web"))
	if err != nil {
		return nil, err
	}

	// Kafka.
	k := o.Kafka
	dialer, transport, err := daemon.KafkaClients(k)
	if err != nil {
		return nil, err
	}
	s.transport = transport
	// The writer serves only dead letters: it never writes to the
	// actions and runs topics it is given.
	if s.dlq, err = writer.New(writer.Options{Brokers: k.Brokers, DLQTopic: k.DLQTopic, Transport: transport,
		ActionsTopic: k.ActionsTopic, RunsTopic: k.RunsTopic,
		Registerer: s.reg, Logger: log.With("component", "dead-letters")}); err != nil {
		return nil, err
	}
	// One consumer group per topic (GROUP-runs, GROUP-actions,
	// GROUP-outcomes): members of one group that subscribe to different
	// topics would rebalance all three topics whenever one member joins.
	for _, t := range []struct {
		topic, group string
		kind         recordKind
	}{{k.RunsTopic, "-runs", kindRun}, {k.ActionsTopic, "-actions", kindAction}, {o.OutcomesTopic, "-outcomes", kindOutcome}} {
		tc := &topicConsumer{s: s, topic: t.topic, kind: t.kind, log: log.With("component", "consumer")}
		tc.c, err = consumer.New(consumer.Options{
			Brokers: k.Brokers, GroupID: k.Group + t.group, Topic: t.topic, Dialer: dialer, Transport: transport,
			BatchSize: o.BatchSize, CommitInterval: k.CommitInterval, LagInterval: k.LagInterval, MaxWait: k.MaxWait,
			HeartbeatInterval: k.HeartbeatInterval, SessionTimeout: k.SessionTimeout, RebalanceTimeout: k.RebalanceTimeout,
			DrainTimeout: o.ShutdownTimeout * 3 / 4,
			Registerer:   prometheus.WrapRegistererWith(prometheus.Labels{"topic": t.topic}, s.reg),
			Logger:       tc.log,
		})
		if err != nil {
			return nil, err
		}
		s.consumers = append(s.consumers, tc)
	}

	// HTTP.
	if s.listener, err = net.Listen("tcp", o.Listen); err != nil {
		return nil, fmt.Errorf("history listener: %w", err)
	}
	mux := http.NewServeMux()
	api.New(q, au, log.With("component", "api")).Register(mux)
	pages.Register(mux)
	s.registerOps(mux)
	s.http = &http.Server{Handler: s.instrument(mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Info("history service ready to start", "db", s.store.Driver().Name(), "listen", s.Addr(), "tokens", len(o.Tokens),
		"check", checker.Available())
	ok = true
	return s, nil
}

// Addr is the address the page, the API and the metrics are served on.
func (s *Service) Addr() string { return s.listener.Addr().String() }

// Store is the service's store.
func (s *Service) Store() *store.Store { return s.store }

// Gatherer is the service's metrics registry.
func (s *Service) Gatherer() prometheus.Gatherer { return s.reg }

// Reload loads the rule files again (SIGHUP); on error the old rules
// stay live.
func (s *Service) Reload() error { return s.rules.reload() }

// Run serves until ctx is done or Close is called, then drains: the
// consumers finish the batches in flight and commit, the HTTP server
// and the database close, within ShutdownTimeout. It returns nil after a
// clean drain. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	ctx, end, err := s.life.Start(ctx)
	if err != nil {
		return err
	}
	defer end()
	ctx, cancel := context.WithCancel(ctx) // also ended by a failing HTTP server
	defer cancel()

	s.log.Info("history service starting", "listen", s.Addr(), "group", s.opts.Kafka.Group,
		"topics", []string{s.opts.Kafka.RunsTopic, s.opts.Kafka.ActionsTopic, s.opts.OutcomesTopic})
	httpErr := make(chan error, 1)
	go func() {
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			httpErr <- err
			cancel()
		}
	}()
	var wg sync.WaitGroup
	for _, tc := range s.consumers {
		wg.Go(func() { _ = tc.c.Run(ctx, tc.handle) })
	}
	if s.opts.RetentionInterval > 0 && s.opts.Retention > 0 {
		wg.Go(func() { s.retentionLoop(ctx) })
	}
	if s.opts.ReloadInterval > 0 && len(s.opts.Rules) > 0 {
		wg.Go(func() { s.rules.watch(ctx, s.opts.ReloadInterval) })
	}

	<-ctx.Done()
	start := time.Now()
	s.draining.Store(true)
	s.log.Info("history service draining", "timeout", s.opts.ShutdownTimeout)
	if !syncx.WaitTimeout(&wg, s.opts.ShutdownTimeout) {
		s.log.Warn("consumers did not stop in time")
	}
	cctx, ccancel := context.WithDeadline(context.Background(), start.Add(s.opts.ShutdownTimeout))
	defer ccancel()
	s.release(cctx)
	s.log.Info("history service stopped", "drain", time.Since(start).Round(time.Millisecond))
	select {
	case err := <-httpErr:
		return fmt.Errorf("history: http server: %w", err)
	default:
		return nil
	}
}

// release closes the HTTP server, the dead-letter writer, Redis and the
// database within ctx.
func (s *Service) release(ctx context.Context) {
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
	}
	if s.listener != nil {
		_ = s.listener.Close()
	}
	if s.dlq != nil {
		if err := s.dlq.Close(ctx); err != nil {
			s.log.Warn("closing the dead-letter writer", "err", err)
		}
	}
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Warn("closing the history database", "err", err)
		}
	}
}

// Close stops the service: if Run is running, it cancels it and waits
// for its drain; otherwise it releases what New opened. Close is
// idempotent; later calls return the first one's result.
func (s *Service) Close() error {
	return s.life.Close(s.opts.ShutdownTimeout, s.release)
}

// retentionLoop deletes what is older than the retention every
// RetentionInterval, and once at start.
func (s *Service) retentionLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	for {
		start := time.Now()
		n, err := s.store.Expire(ctx, s.opts.Clock().Add(-s.opts.Retention), s.opts.DeleteBatch, 10*time.Millisecond)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("retention: deleting old history failed; trying again at the next interval", "err", err)
		case err == nil:
			s.m.retentionRuns.SetToCurrentTime()
			var total int64
			for _, v := range n {
				total += v
			}
			if total > 0 {
				s.log.Info("retention: deleted old history", "runs", n[store.TableRuns], "actions", n[store.TableActions],
					"outcomes", n[store.TableOutcomes], "duration", time.Since(start).Round(time.Millisecond))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
