package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/engine"
)

// Engine is what a Pipeline needs of *engine.Engine.
type Engine interface {
	Process(ctx context.Context, events []*engine.Event, token string) (*engine.Output, error)
	Commit(ctx context.Context, out *engine.Output) error
}

// Producer is what a Pipeline needs of *actions.Producer.
type Producer interface {
	Publish(ctx context.Context, acts []actions.Action, runs []actions.Run) error
	DeadLetter(ctx context.Context, dls []actions.DeadLetter) error
}

// DefaultPublishTimeout bounds one attempt to publish a batch's outputs or
// dead letters.
const DefaultPublishTimeout = 15 * time.Second

// Pipeline stages, the values of the stage label.
const (
	StageDeadLetter = "dead_letter"
	StageProcess    = "process"
	StagePublish    = "publish"
	StageCommit     = "commit"
)

// PipelineOptions configure a [Pipeline].
type PipelineOptions struct {
	// Decoder turns messages into events. Required.
	Decoder Decoder
	// Engine processes the events. Required.
	Engine Engine
	// Producer writes outputs and dead letters. Required.
	Producer Producer
	// PublishTimeout bounds each attempt of Publish and DeadLetter (the
	// producer itself retries until its context is done): a Kafka that
	// keeps failing then shows as a stalled batch, which is retried;
	// default 15s.
	PublishTimeout time.Duration
	// Registerer receives the pipeline metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger; nil discards. Records carry ids (partition, offset, event,
	// automation), never field values.
	Logger *slog.Logger
}

// Pipeline handles the batches of a [Consumer]: its Handle method is a
// [Handler]. For each batch it
//
//  1. decodes every message; one that cannot be decoded goes to the
//     dead-letter topic with its original key and value and the reason
//     and detail headers, and the batch goes on without it;
//  2. runs the decoded events through the engine (Process);
//  3. publishes the actions and runs and waits for Kafka's
//     acknowledgement (Publish);
//  4. commits the engine's state (Commit), which must follow the
//     acknowledgement and precede the partition's next batch.
//
// A step that fails (Redis or Kafka unavailable) is retried with backoff
// until it succeeds or the context is done; the batch is never skipped,
// so its offsets are never committed past. A step is retried on its own:
// Publish and Commit again with the same Output (the same action ids), so
// that the engine's claims of the first Process stay ours. While a batch
// is retrying, Err reports it. A record Kafka refuses for good (larger
// than the topic accepts, an unknown topic) stalls the partition the same
// way, so that no output is lost silently: the log names the cause.
type Pipeline struct {
	dec     Decoder
	eng     Engine
	prod    Producer
	timeout time.Duration
	log     *slog.Logger
	m       *pipelineMetrics

	mu      sync.Mutex
	stalled map[*stall]struct{}
}

// stall is one batch step being retried.
type stall struct {
	partition int
	stage     string
	err       error
	since     time.Time
}

// NewPipeline returns a pipeline configured by opts.
func NewPipeline(opts PipelineOptions) (*Pipeline, error) {
	if opts.Decoder == nil || opts.Engine == nil || opts.Producer == nil {
		return nil, errors.New("ingest: PipelineOptions.Decoder, Engine and Producer are required")
	}
	if opts.PublishTimeout < 0 {
		return nil, fmt.Errorf("ingest: negative PipelineOptions.PublishTimeout %v", opts.PublishTimeout)
	}
	if opts.PublishTimeout == 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newPipelineMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Pipeline{dec: opts.Decoder, eng: opts.Engine, prod: opts.Producer, timeout: opts.PublishTimeout,
		log: logger, m: m, stalled: map[*stall]struct{}{}}, nil
}

// Err returns nil when no batch is being retried, else an error naming the
// stage, partition and cause of the longest-running one.
func (p *Pipeline) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var oldest *stall
	for s := range p.stalled {
		if oldest == nil || s.since.Before(oldest.since) {
			oldest = s
		}
	}
	if oldest == nil {
		return nil
	}
	return fmt.Errorf("partition %d: %s failing for %v: %w", oldest.partition, oldest.stage,
		time.Since(oldest.since).Round(time.Second), oldest.err)
}

// Handle processes one batch of messages of one partition, in order (see
// Pipeline). It returns nil once the batch's outputs are acknowledged and
// the engine's state committed, or an error when ctx is done first.
func (p *Pipeline) Handle(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	start := time.Now()
	part := msgs[0].Partition
	log := p.log.With("partition", part)
	events := make([]*engine.Event, 0, len(msgs))
	var dls []actions.DeadLetter
	for i := range msgs {
		m := &msgs[i]
		ev, err := p.dec.Decode(m.Key, m.Value)
		if err != nil {
			reason, detail := Reason(err), Detail(err)
			dls = append(dls, actions.DeadLetter{Key: m.Key, Value: m.Value, Reason: reason, Detail: detail,
				Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time})
			log.Warn("undecodable message; dead-lettering it", "offset", m.Offset, "reason", reason, "detail", detail)
			continue
		}
		events = append(events, ev)
	}
	p.m.decoded.Add(float64(len(events)))

	if len(dls) > 0 {
		err := p.retry(ctx, part, StageDeadLetter, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			return p.deadLetter(ctx, log, dls)
		})
		if err != nil {
			return err
		}
		for _, dl := range dls {
			p.m.deadLetters.WithLabelValues(dl.Reason).Inc()
		}
	}

	var out *engine.Output
	if len(events) > 0 {
		// Every attempt claims with the same token: an attempt whose claims
		// Redis applied without the reply arriving leaves them ours for the
		// next, which does not wait for their lease (docs/engine.md).
		token := engine.NewClaimToken()
		err := p.retry(ctx, part, StageProcess, func(ctx context.Context) error {
			var err error
			out, err = p.eng.Process(ctx, events, token)
			return err
		})
		if err != nil {
			return err
		}
		err = p.retry(ctx, part, StagePublish, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			return p.prod.Publish(ctx, out.Actions, out.Runs)
		})
		if err != nil {
			return err
		}
	}
	acked := time.Now()
	if out != nil {
		if err := p.retry(ctx, part, StageCommit, func(ctx context.Context) error { return p.eng.Commit(ctx, out) }); err != nil {
			return err
		}
	}
	for i := range msgs {
		if t := msgs[i].Time; !t.IsZero() {
			p.m.latency.Observe(max(acked.Sub(t), 0).Seconds())
		}
	}
	p.m.batches.Inc()
	p.m.batchDuration.Observe(time.Since(start).Seconds())
	if log.Enabled(ctx, slog.LevelDebug) {
		nActs, nRuns := 0, 0
		if out != nil {
			nActs, nRuns = len(out.Actions), len(out.Runs)
			for i := range out.Actions {
				a := &out.Actions[i]
				log.Debug("action", "action_id", a.ActionID, "automation", a.AutomationID, "event", a.EventID)
			}
		}
		log.Debug("batch done", "first_offset", msgs[0].Offset, "last_offset", msgs[len(msgs)-1].Offset,
			"events", len(events), "dead_letters", len(dls), "actions", nActs, "runs", nRuns,
			"duration", time.Since(start))
	}
	return nil
}

// deadLetter writes dls. If Kafka refuses them as too large, they are
// written one by one, and one refused again is written without its value
// (the detail says how many bytes were left out): a message too large for
// the dead-letter topic must not stall its partition for good.
func (p *Pipeline) deadLetter(ctx context.Context, log *slog.Logger, dls []actions.DeadLetter) error {
	err := p.prod.DeadLetter(ctx, dls)
	if err == nil || !tooLarge(err) {
		return err
	}
	for _, dl := range dls {
		err := p.prod.DeadLetter(ctx, []actions.DeadLetter{dl})
		if err != nil && tooLarge(err) {
			log.Warn("dead letter too large for the dead-letter topic; writing it without its value",
				"offset", dl.Offset, "bytes", len(dl.Value))
			dl.Detail = truncate(fmt.Sprintf("%s (the original value, %d bytes, is left out: too large for the dead-letter topic)",
				dl.Detail, len(dl.Value)), MaxDetailBytes)
			dl.Value = nil
			err = p.prod.DeadLetter(ctx, []actions.DeadLetter{dl})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tooLarge reports whether Kafka, or kafka-go, refused a write as too
// large.
func tooLarge(err error) bool {
	var mtl kafka.MessageTooLargeError
	return errors.As(err, &mtl) || errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge)
}

// Bounds of a failing step's retry backoff.
const (
	stepBackoffMin = 50 * time.Millisecond
	stepBackoffMax = 5 * time.Second
)

// retry runs fn until it succeeds or ctx is done, with backoff, marking
// the batch stalled while it fails. actions.ErrClosed is returned at once.
func (p *Pipeline) retry(ctx context.Context, partition int, stage string, fn func(context.Context) error) error {
	var st *stall
	defer func() {
		if st != nil {
			p.mu.Lock()
			delete(p.stalled, st)
			p.m.stalled.Set(float64(len(p.stalled)))
			p.mu.Unlock()
		}
	}()
	backoff := stepBackoffMin
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if st != nil {
				p.log.Info("batch step succeeded after retries", "partition", partition, "stage", stage, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last error: %v)", stage, ctx.Err(), err)
		}
		if errors.Is(err, actions.ErrClosed) {
			return fmt.Errorf("%s: %w", stage, err)
		}
		p.mu.Lock()
		if st == nil {
			st = &stall{partition: partition, stage: stage, since: time.Now()}
			p.stalled[st] = struct{}{}
			p.m.stalled.Set(float64(len(p.stalled)))
		}
		st.err = err
		p.mu.Unlock()
		p.m.retries.WithLabelValues(stage).Inc()
		wait := jitter(backoff)
		p.log.Warn("batch step failed; retrying", "partition", partition, "stage", stage, "attempt", attempt,
			"backoff", wait, "err", err)
		if !sleep(ctx, wait) {
			return fmt.Errorf("%s: %w (last error: %v)", stage, ctx.Err(), err)
		}
		backoff = min(2*backoff, stepBackoffMax)
	}
}

// pipelineMetrics are the pipeline's metrics. Labels: reason (the fixed
// set Reasons) and stage (the Stage constants).
type pipelineMetrics struct {
	decoded       prometheus.Counter
	deadLetters   *prometheus.CounterVec
	batches       prometheus.Counter
	retries       *prometheus.CounterVec
	stalled       prometheus.Gauge
	latency       prometheus.Histogram
	batchDuration prometheus.Histogram
}

func newPipelineMetrics(reg prometheus.Registerer) (*pipelineMetrics, error) {
	m := &pipelineMetrics{
		decoded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_decoded_events_total", Help: "Input messages decoded into events.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_dead_letters_total", Help: "Input messages written to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_pipeline_batches_total", Help: "Batches whose outputs Kafka acknowledged and whose state was committed.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_pipeline_retries_total", Help: "Batch steps retried after an error, by stage.",
		}, []string{"stage"}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_pipeline_stalled_batches", Help: "Batches currently retrying a failed step.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "whenthen_event_latency_seconds",
			Help:    "Time from an input message's Kafka timestamp until the outputs of its batch were acknowledged by Kafka.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18), // 1ms to ~2m
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "whenthen_pipeline_batch_duration_seconds",
			Help:    "Time to handle one batch: decode, dead letters, engine, publish and state commit, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	for _, r := range Reasons {
		m.deadLetters.WithLabelValues(r)
	}
	for _, s := range []string{StageDeadLetter, StageProcess, StagePublish, StageCommit} {
		m.retries.WithLabelValues(s)
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.decoded, m.deadLetters, m.batches, m.retries, m.stalled, m.latency, m.batchDuration}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("ingest: register pipeline metrics: %w", err)
		}
	}
	return m, nil
}
