// Package service is the whenthen service that `whenthen run` starts: it
// wires the Kafka consumer and decoder (package ingest), the main loop
// (package pipeline), the engine and its Redis store (packages engine and
// engine/store), the Kafka writer (package actions/writer) and the rules
// (package rules) into one [Service] with New, Run and Close, and serves
// /metrics, /healthz and /readyz.
//
// Besides the consumer, Run fires due date timers every TimerInterval
// through the pipeline (Pipeline.FireDue: fire, publish, then commit, the
// last two retried on error), and reloads the rule files when they change
// or Reload is called (on SIGHUP): the whole new set is compiled first
// with the same Compiler, and swapped in only if it is valid; otherwise
// the old set keeps running.
package service

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
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/syncx"
	"github.com/whenthen/whenthen/pipeline"
	"github.com/whenthen/whenthen/rules"
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("service: closed")

// Service is the running engine: Kafka in, rules, Redis state, Kafka out.
type Service struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry
	m    *metrics

	compiler  *rules.Compiler
	schema    *crm.Schema
	rdb       redis.UniversalClient
	store     *store.Redis
	engine    *engine.Engine
	dialer    *kafka.Dialer
	transport *kafka.Transport
	writer    *writer.Writer
	consumer  *consumer.Consumer
	pipeline  *pipeline.Pipeline

	listener net.Listener
	http     *http.Server

	reloadMu  sync.Mutex
	rulesSeen string // fingerprint of the rule files at the last load attempt

	draining atomic.Bool

	life daemon.Lifecycle // Run once, Close idempotent
}

// New builds a service: it loads the schema and the rules (failing with
// their rules.ErrorList if any is invalid), sets up the clients and binds
// the metrics address. It does not wait for Kafka or Redis: Run connects,
// and /readyz says when they answer.
func New(opts Options) (*Service, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("service: invalid options: %w", err)
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
	s.life.Name, s.life.ErrClosed = "service", ErrClosed
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

	// Rules.
	s.schema = crm.DefaultSchema()
	if o.Schema != "" {
		if s.schema, err = crm.LoadSchema(o.Schema); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
	}
	if s.compiler, err = rules.NewCompiler(rules.CompilerOptions{Schema: s.schema, Limits: o.Decoder.Limits}); err != nil {
		return nil, err
	}
	s.rulesSeen = rules.Fingerprint(o.Rules)
	set, err := s.compileRules()
	if err != nil {
		s.m.reloads.WithLabelValues("failure").Inc()
		return nil, fmt.Errorf("rules: %w", err)
	}
	s.m.reloads.WithLabelValues("success").Inc()
	s.m.lastReload.SetToCurrentTime()

	// Redis and the engine.
	if s.rdb, err = daemon.RedisClient(o.Redis, log); err != nil {
		return nil, err
	}
	s.store, err = store.NewRedis(s.rdb, o.Redis.Prefix, store.Options{Schema: s.schema, Limits: s.compiler.Limits(),
		TTLs: store.TTLs{Dedup: o.DedupTTL, Snapshot: o.SnapshotTTL}, SnapshotEncoding: o.SnapshotEncoding, Logger: log.With("component", "engine")})
	if err != nil {
		return nil, err
	}
	s.engine, err = engine.New(engine.Options{Rules: set, Schema: s.schema, Store: s.store, Clock: o.Clock,
		Registerer: s.reg, Logger: log.With("component", "engine")})
	if err != nil {
		return nil, err
	}

	// Kafka.
	if s.dialer, s.transport, err = daemon.KafkaClients(o.Kafka); err != nil {
		return nil, err
	}
	k := o.Kafka
	s.writer, err = writer.New(writer.Options{
		Brokers: k.Brokers, ActionsTopic: k.ActionsTopic, RunsTopic: k.RunsTopic, DLQTopic: k.DLQTopic,
		Transport: s.transport, Registerer: s.reg, Logger: log.With("component", "producer"),
	})
	if err != nil {
		return nil, err
	}
	unknown, err := ingest.NewUnknownFieldMetrics(s.reg)
	if err != nil {
		return nil, err
	}
	dec, err := NewDecoder(o.Decoder, s.schema, s.compiler.Limits(), unknown.Observe)
	if err != nil {
		return nil, err
	}
	s.pipeline, err = pipeline.New(pipeline.Options{Decoder: dec, Engine: s.engine, Writer: s.writer,
		StateCache: engine.NewCacheBudget(o.StateCacheBytes), Registerer: s.reg, Logger: log.With("component", "pipeline")})
	if err != nil {
		return nil, err
	}
	s.consumer, err = consumer.New(consumer.Options{
		Brokers:           k.Brokers,
		GroupID:           k.Group,
		Topic:             k.InputTopic,
		Dialer:            s.dialer,
		Transport:         s.transport,
		BatchSize:         o.BatchSize,
		CommitInterval:    k.CommitInterval,
		LagInterval:       k.LagInterval,
		MaxBytes:          max(consumer.DefaultFetchMaxBytes, 2*o.Decoder.MaxBytes), // a fetch must hold the largest message decoded
		MaxWait:           k.MaxWait,
		HeartbeatInterval: k.HeartbeatInterval,
		SessionTimeout:    k.SessionTimeout,
		RebalanceTimeout:  k.RebalanceTimeout,
		// The consumer drains within 3/4 of the shutdown; the writer,
		// Redis and the HTTP server close in the rest.
		DrainTimeout: o.ShutdownTimeout * 3 / 4,
		Registerer:   s.reg,
		Logger:       log.With("component", "consumer"),
	})
	if err != nil {
		return nil, err
	}

	// HTTP.
	if s.listener, err = net.Listen("tcp", o.MetricsListen); err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	s.http = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	sum := set.Summary()
	log.Info("rules loaded", "files", sum.Files, "automations", sum.Automations, "enabled", sum.Enabled)
	ok = true
	return s, nil
}

// NewDecoder builds the decoder o chooses, of schema's records under lim;
// onUnknown, if not nil, is told of the record fields the schema does not
// declare (ingest.DecoderOptions.OnUnknownFields). The offline commands
// build theirs with it too, so that they read what the service reads.
func NewDecoder(o DecoderOptions, schema *crm.Schema, lim crm.Limits, onUnknown func(*engine.Event, []crm.UnknownField)) (ingest.Decoder, error) {
	do := ingest.DecoderOptions{Schema: schema, MaxBytes: o.MaxBytes, MaxDepth: o.MaxDepth, MaxElements: o.MaxElements, Limits: lim,
		OnUnknownFields: onUnknown}
	if o.Kind == DecoderDebezium {
		return ingest.NewDebeziumDecoder(ingest.DebeziumOptions{DecoderOptions: do, Tables: o.Tables, UnavailableValue: o.UnavailableValue})
	}
	return ingest.NewEnvelopeDecoder(do)
}

// MetricsAddr is the address the HTTP server listens on (useful with a
// port of 0).
func (s *Service) MetricsAddr() string { return s.listener.Addr().String() }

// Gatherer is the service's metrics registry: every metric /metrics
// serves.
func (s *Service) Gatherer() prometheus.Gatherer { return s.reg }

// Rules is the live rule set.
func (s *Service) Rules() *rules.Set { return s.engine.Rules() }

// Schema is the record schema the service loaded.
func (s *Service) Schema() *crm.Schema { return s.schema }

// Run serves until ctx is done or Close is called, then drains: it stops
// fetching, finishes the batches in flight, commits their offsets and
// closes the Kafka clients, Redis and the HTTP server, within
// ShutdownTimeout even if a kafka-go Close hangs. It returns nil after a
// clean drain, or the error that stopped it (the HTTP server failing).
// Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	ctx, end, err := s.life.Start(ctx)
	if err != nil {
		return err
	}
	defer end()
	ctx, cancel := context.WithCancel(ctx) // also ended by a failing HTTP server
	defer cancel()

	s.log.Info("service starting", "metrics", s.MetricsAddr(), "topic", s.opts.Kafka.InputTopic,
		"group", s.opts.Kafka.Group, "brokers", s.opts.Kafka.Brokers)
	httpErr := make(chan error, 1)
	go func() {
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			httpErr <- err
			cancel()
		}
	}()

	// Work in flight (a batch of timers) outlives ctx until the drain
	// deadline.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.consumer.Run(ctx, s.pipeline.Handle) })
	wg.Go(func() { s.timerLoop(ctx, work) })
	if s.opts.ReloadInterval > 0 {
		wg.Go(func() { s.watchRules(ctx) })
	}

	<-ctx.Done()
	start := time.Now()
	deadline := start.Add(s.opts.ShutdownTimeout)
	s.draining.Store(true)
	s.log.Info("service draining", "timeout", s.opts.ShutdownTimeout)
	// The consumer bounds its own drain (3/4 of the timeout); the timer
	// loop's work is cancelled at the same point.
	stopWork := time.AfterFunc(s.opts.ShutdownTimeout*3/4, cancelWork)
	if !syncx.WaitTimeout(&wg, time.Until(deadline)) {
		s.log.Warn("consumer or timer loop did not stop in time")
	}
	stopWork.Stop()
	cctx, ccancel := context.WithDeadline(context.Background(), deadline)
	defer ccancel()
	s.release(cctx)
	s.log.Info("service stopped", "drain", time.Since(start).Round(time.Millisecond))
	select {
	case err := <-httpErr:
		return fmt.Errorf("service: metrics server: %w", err)
	default:
		return nil
	}
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
		if err := s.rdb.Close(); err != nil {
			s.log.Warn("closing the redis client", "err", err)
		}
	}
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			s.log.Warn("shutting down the metrics server", "err", err)
			_ = s.http.Close()
		}
	}
	if s.listener != nil {
		_ = s.listener.Close() // already closed by Shutdown when Run served it
	}
}

// Close stops the service: if Run is running, it cancels it and waits for
// its drain; otherwise it releases what New opened. Close is idempotent
// and safe for concurrent use; later calls return the first one's result.
func (s *Service) Close() error {
	return s.life.Close(s.opts.ShutdownTimeout, s.release)
}
