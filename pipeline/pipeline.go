package pipeline

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
	"github.com/whenthen/whenthen/actions/writer"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/syncx"
)

// Decoder is what a Pipeline needs of a decoder (ingest.EnvelopeDecoder,
// ingest.DebeziumDecoder): the event of a message, or an error that
// ingest.Reason and ingest.Detail describe.
type Decoder interface {
	Decode(key, value []byte) (*engine.Event, error)
}

// Engine is what a Pipeline needs of *engine.Engine: ProcessCached for a
// batch, FireDue for a round of date timers and schedule ticks, Commit for
// either.
type Engine interface {
	ProcessCached(ctx context.Context, events []*engine.Event, token string, cache *engine.StateCache) (*engine.Output, error)
	FireDue(ctx context.Context, upTo time.Time, limit int) (*engine.Output, error)
	Commit(ctx context.Context, out *engine.Output) error
}

// Writer is what a Pipeline needs of *writer.Writer. Its errors are
// classified with writer.ErrClosed and writer.TooLarge.
type Writer interface {
	Publish(ctx context.Context, acts []actions.Action, runs []actions.Run) error
	DeadLetter(ctx context.Context, dls []actions.DeadLetter) error
}

// DefaultPublishTimeout bounds one attempt to publish a batch's outputs or
// dead letters.
const DefaultPublishTimeout = 15 * time.Second

// Pipeline stages, the values of the stage label: a batch's steps are
// StageDeadLetter, StageProcess, StagePublish and StageCommit; a timer
// round's StageFire, StagePublish and StageCommit.
const (
	StageDeadLetter = "dead_letter"
	StageProcess    = "process"
	StageFire       = "fire"
	StagePublish    = "publish"
	StageCommit     = "commit"
)

// Options configure a [Pipeline].
type Options struct {
	// Decoder turns messages into events. Required.
	Decoder Decoder
	// Engine processes the events. Required.
	Engine Engine
	// Writer writes outputs and dead letters. Required.
	Writer Writer
	// PublishTimeout bounds each attempt of Publish and DeadLetter (the
	// writer itself retries until its context is done): a Kafka that
	// keeps failing then shows as a stalled batch, which is retried;
	// default 15s.
	PublishTimeout time.Duration
	// Registerer receives the pipeline metrics; nil registers none.
	Registerer prometheus.Registerer
	// StateCache, when set, gives each input partition a cache of its
	// records' snapshots (engine.StateCache), trusted while the
	// partition's batches follow on one another; nil reads every snapshot
	// from the store.
	StateCache *engine.CacheBudget
	// Logger; nil discards. Records carry ids (partition, offset, event,
	// automation), never field values.
	Logger *slog.Logger
}

// Pipeline handles the batches of a consumer.Consumer (package
// ingest/consumer): its Handle method is a consumer.Handler. For each batch it
//
//  1. decodes every message; one that cannot be decoded goes to the
//     dead-letter topic with its original key and value and the reason
//     and detail headers, and the batch goes on without it;
//  2. runs the decoded events through the engine (ProcessCached, with the
//     partition's state cache);
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
	w       Writer
	timeout time.Duration
	log     *slog.Logger
	m       *metrics

	mu      sync.Mutex
	stalled map[*stall]struct{}

	// budget makes the partitions' state caches (nil: none); parts holds
	// each partition's cache and the offset its next batch must start at
	// for the cache to stay right.
	budget  *engine.CacheBudget
	partsMu sync.Mutex
	parts   map[int]*partState
}

// partState is what the pipeline keeps of one input partition.
type partState struct {
	cache *engine.StateCache
	next  int64 // the offset after the last batch handled; -1 at first
}

// stall is one batch step being retried.
type stall struct {
	partition int
	stage     string
	err       error
	since     time.Time
}

// New returns a pipeline configured by opts.
func New(opts Options) (*Pipeline, error) {
	if opts.Decoder == nil || opts.Engine == nil || opts.Writer == nil {
		return nil, errors.New("pipeline: Options.Decoder, Engine and Writer are required")
	}
	if opts.PublishTimeout < 0 {
		return nil, fmt.Errorf("pipeline: negative Options.PublishTimeout %v", opts.PublishTimeout)
	}
	if opts.PublishTimeout == 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Pipeline{dec: opts.Decoder, eng: opts.Engine, w: opts.Writer, timeout: opts.PublishTimeout,
		log: logger, m: m, stalled: map[*stall]struct{}{}, budget: opts.StateCache, parts: map[int]*partState{}}, nil
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
			reason, detail := ingest.Reason(err), ingest.Detail(err)
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
		cache := p.cacheFor(part, msgs[0].Offset)
		err := p.retry(ctx, part, StageProcess, func(ctx context.Context) error {
			var err error
			out, err = p.eng.ProcessCached(ctx, events, token, cache)
			return err
		})
		if err != nil {
			return err
		}
		err = p.retry(ctx, part, StagePublish, func(ctx context.Context) error { return p.publish(ctx, out) })
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
	p.handled(part, msgs[len(msgs)-1].Offset+1)
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

// cacheFor returns partition's state cache for a batch starting at first:
// emptied when the batch does not follow on the last one handled (another
// instance may have processed the offsets between, or the partition is
// new to this instance), since its records may have changed meanwhile.
func (p *Pipeline) cacheFor(partition int, first int64) *engine.StateCache {
	if p.budget == nil {
		return nil
	}
	p.partsMu.Lock()
	defer p.partsMu.Unlock()
	ps := p.parts[partition]
	if ps == nil {
		ps = &partState{cache: p.budget.Partition(), next: -1}
		p.parts[partition] = ps
	}
	if ps.next != first {
		ps.cache.Reset()
	}
	return ps.cache
}

// handled records that partition's batch up to next was handled.
func (p *Pipeline) handled(partition int, next int64) {
	if p.budget == nil {
		return
	}
	p.partsMu.Lock()
	defer p.partsMu.Unlock()
	if ps := p.parts[partition]; ps != nil {
		ps.next = next
	}
}

// FireDue fires one round of the date timers and schedule ticks due at
// now, at most limit of them, the way Handle takes a batch from the engine on: the engine's
// FireDue, then Publish of the round's actions and runs, then Commit,
// which acknowledges the timers. Publish and Commit are retried with the
// same Output until they succeed or ctx is done; a FireDue that fails is
// not retried: its error is returned and the caller tries again later
// (the timers stay due). It returns the work the round did (timers fired,
// known records walked by schedule ticks and re-armed timers), 0 when
// nothing was due.
//
// A round abandoned when ctx is done leaves its timers leased in Redis:
// they fire again once the lease expires, at least once, deduplicated by
// their deterministic event ids. Failed steps count in
// whenthen_timer_loop_errors_total by stage (StageFire, StagePublish,
// StageCommit); a timer round is not a batch, and Err does not report it.
func (p *Pipeline) FireDue(ctx context.Context, now time.Time, limit int) (int, error) {
	out, err := p.eng.FireDue(ctx, now, limit)
	if err != nil {
		if ctx.Err() == nil {
			p.m.timerErrors.WithLabelValues(StageFire).Inc()
			p.log.Warn("firing due timers failed; trying again at the next tick", "err", err)
		}
		return 0, fmt.Errorf("%s: %w", StageFire, err)
	}
	if err := p.retryTimers(ctx, StagePublish, func(ctx context.Context) error { return p.publish(ctx, out) }); err != nil {
		return 0, err
	}
	if err := p.retryTimers(ctx, StageCommit, func(ctx context.Context) error { return p.eng.Commit(ctx, out) }); err != nil {
		return 0, err
	}
	if len(out.Runs) > 0 {
		p.log.Info("timers and schedules fired", "runs", len(out.Runs), "actions", len(out.Actions))
		for i := range out.Actions {
			a := &out.Actions[i]
			p.log.Debug("action", "action_id", a.ActionID, "automation", a.AutomationID, "event", a.EventID, "record", a.RecordID)
		}
	}
	return out.Work(), nil
}

// publish writes out's actions and runs. The writer retries until its
// context is done: each attempt is bounded by PublishTimeout, so that a
// failing Kafka is counted and logged by the step's retry.
func (p *Pipeline) publish(ctx context.Context, out *engine.Output) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.w.Publish(ctx, out.Actions, out.Runs)
}

// deadLetter writes dls. If Kafka refuses them as too large, they are
// written one by one, and one refused again is written without its value
// (the detail says how many bytes were left out): a message too large for
// the dead-letter topic must not stall its partition for good.
func (p *Pipeline) deadLetter(ctx context.Context, log *slog.Logger, dls []actions.DeadLetter) error {
	err := p.w.DeadLetter(ctx, dls)
	if err == nil || !writer.TooLarge(err) {
		return err
	}
	for _, dl := range dls {
		err := p.w.DeadLetter(ctx, []actions.DeadLetter{dl})
		if err != nil && writer.TooLarge(err) {
			log.Warn("dead letter too large for the dead-letter topic; writing it without its value",
				"offset", dl.Offset, "bytes", len(dl.Value))
			dl.Detail = ingest.DetailValueLeftOut(dl.Detail, len(dl.Value))
			dl.Value = nil
			err = p.w.DeadLetter(ctx, []actions.DeadLetter{dl})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Bounds of a failing step's retry backoff.
const (
	stepBackoffMin = 50 * time.Millisecond
	stepBackoffMax = 5 * time.Second
)

// retry runs a step of a batch of partition with [retry], marking the
// batch stalled while the step fails and counting each failure in
// whenthen_pipeline_retries_total.
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
	attempts, err := retry(ctx, stage, fn, func(attempt int, err error, wait time.Duration) {
		p.mu.Lock()
		if st == nil {
			st = &stall{partition: partition, stage: stage, since: time.Now()}
			p.stalled[st] = struct{}{}
			p.m.stalled.Set(float64(len(p.stalled)))
		}
		st.err = err
		p.mu.Unlock()
		p.m.retries.WithLabelValues(stage).Inc()
		p.log.Warn("batch step failed; retrying", "partition", partition, "stage", stage, "attempt", attempt,
			"backoff", wait, "err", err)
	})
	if err == nil && attempts > 1 {
		p.log.Info("batch step succeeded after retries", "partition", partition, "stage", stage, "attempts", attempts)
	}
	return err
}

// retryTimers runs a step of a timer round with [retry], counting each
// failure in whenthen_timer_loop_errors_total.
func (p *Pipeline) retryTimers(ctx context.Context, stage string, fn func(context.Context) error) error {
	_, err := retry(ctx, stage, fn, func(attempt int, err error, wait time.Duration) {
		p.m.timerErrors.WithLabelValues(stage).Inc()
		p.log.Warn("timer round step failed; retrying", "stage", stage, "attempt", attempt, "backoff", wait, "err", err)
	})
	if err != nil && ctx.Err() != nil {
		p.log.Warn("timer round abandoned at shutdown; its timers fire again after their lease", "stage", stage, "err", err)
	}
	return err
}

// retry runs fn until it succeeds or ctx is done, waiting with backoff
// after each failure, which it reports to failed first (a failure once ctx
// is done is not reported). It returns the number of attempts and nil, or
// an error naming stage and wrapping ctx's error, or writer.ErrClosed,
// which ends it at once.
func retry(ctx context.Context, stage string, fn func(context.Context) error, failed func(attempt int, err error, wait time.Duration)) (int, error) {
	backoff := stepBackoffMin
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, fmt.Errorf("%s: %w (last error: %v)", stage, ctx.Err(), err)
		}
		if errors.Is(err, writer.ErrClosed) {
			return attempt, fmt.Errorf("%s: %w", stage, err)
		}
		wait := syncx.Jitter(backoff)
		failed(attempt, err, wait)
		if !syncx.Sleep(ctx, wait) {
			return attempt, fmt.Errorf("%s: %w (last error: %v)", stage, ctx.Err(), err)
		}
		backoff = min(2*backoff, stepBackoffMax)
	}
}

// metrics are the pipeline's metrics. Labels: reason (the fixed set
// ingest.Reasons) and stage (the Stage constants).
type metrics struct {
	decoded       prometheus.Counter
	deadLetters   *prometheus.CounterVec
	batches       prometheus.Counter
	retries       *prometheus.CounterVec
	stalled       prometheus.Gauge
	timerErrors   *prometheus.CounterVec
	latency       prometheus.Histogram
	batchDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
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
		timerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_timer_loop_errors_total", Help: "Failed steps of the date timer loop (each is retried), by stage.",
		}, []string{"stage"}),
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
	for _, r := range ingest.Reasons {
		m.deadLetters.WithLabelValues(r)
	}
	for _, s := range []string{StageDeadLetter, StageProcess, StagePublish, StageCommit} {
		m.retries.WithLabelValues(s)
	}
	for _, s := range []string{StageFire, StagePublish, StageCommit} {
		m.timerErrors.WithLabelValues(s)
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.decoded, m.deadLetters, m.batches, m.retries, m.stalled, m.timerErrors, m.latency, m.batchDuration}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("pipeline: register metrics: %w", err)
		}
	}
	return m, nil
}
