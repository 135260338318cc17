// Package writer writes whenthen's output records to Kafka: action and
// run-history records (package actions) to their topics, delivery
// outcomes to theirs (outcomes.go), and input that could not be processed
// to the dead-letter topic, each through a
// synchronous kafka-go Writer that returns only once Kafka has
// acknowledged every message. [EnsureTopics] creates the topics, for
// development and tests.
//
// The records' values, keys and headers are the topics' format, defined
// by package actions; this package adds no format of its own.
package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/syncx"
)

// Defaults of Options.
const (
	DefaultBatchTimeout = 5 * time.Millisecond
	DefaultBatchSize    = 1000
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxAttempts  = 10
)

// Our own retry backoff, around the kafka-go writer's: it doubles from
// retryBackoffMin up to retryBackoffMax, each wait drawn from [d/2, d].
const (
	retryBackoffMin = 50 * time.Millisecond
	retryBackoffMax = 2 * time.Second
)

// ErrClosed is returned by Publish and DeadLetter once Close has been called.
var ErrClosed = errors.New("writer: closed")

// Options configure a [Writer]. Zero values take the defaults given with
// each field.
type Options struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string

	// ActionsTopic receives action records; default "automations.actions".
	ActionsTopic string
	// RunsTopic receives run-history records; default "automations.runs".
	RunsTopic string
	// DLQTopic receives dead letters; default "automations.dlq".
	DLQTopic string
	// OutcomesTopic receives delivery outcomes (WriteOutcomes); default
	// "automations.outcomes". The four topics must differ.
	OutcomesTopic string

	// Transport carries TLS and SASL settings and caches cluster metadata;
	// nil means kafka.DefaultTransport. The writer never closes it. A
	// topic created after the transport last refreshed its metadata stays
	// unknown for up to Transport.MetadataTTL (default 6s); until then
	// writes to it fail and are retried.
	Transport *kafka.Transport

	// BatchTimeout is how long a partition's batch waits to fill before it is
	// sent; default 5ms. It adds to the latency of every Publish whose
	// messages fill no batch, so keep it small (kafka-go's own default, 1s,
	// stalls synchronous writes).
	BatchTimeout time.Duration
	// BatchSize is the most messages in one partition's batch; default 1000.
	// kafka-go allocates room for BatchSize messages (152 bytes each) for
	// every batch it starts, however few it ends up holding, so a smaller
	// value saves garbage when each Publish carries few messages.
	BatchSize int
	// WriteTimeout bounds one produce request; default 10s.
	WriteTimeout time.Duration
	// MaxAttempts is how many times the kafka-go writer tries a batch
	// before it reports the batch failed; default 10. Publish and
	// DeadLetter keep retrying what failed, with their own backoff, until
	// their context is done, so this only decides how often a failure is
	// seen (and counted) by the writer.
	MaxAttempts int
	// Compression is the codec of produced batches; default none.
	Compression kafka.Compression

	// Registerer receives the writer metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives retries and failures; nil discards them.
	Logger *slog.Logger
}

// Writer writes action records, run-history records and dead letters to
// their Kafka topics, each through its own synchronous kafka-go Writer
// (acks from all in-sync replicas, messages hashed to partitions by key, no
// topic auto-creation). It is safe for concurrent use.
type Writer struct {
	acts, runs, dlq *topicWriter

	// The outcomes topic's writer (outcomes.go) is made on first use, so
	// that a writer that never writes outcomes (the engine's) has no
	// series of that topic.
	outsMu    sync.Mutex
	outs      *topicWriter
	outsTopic string
	newTW     func(topic string) *topicWriter

	logger *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed when Close is called: stops retry waits
	flushed   chan struct{} // closed when every writer has closed
	closeErr  error         // set before flushed is closed
}

// topicWriter is one topic's writer, its metrics and retry loop.
type topicWriter struct {
	topic  string
	w      *kafka.Writer
	logger *slog.Logger
	done   <-chan struct{}

	produced, errors, retries prometheus.Counter
	duration                  prometheus.Observer
}

// New returns a writer configured by opts. It does not connect: the first
// write does. It fails on an invalid option or when the metrics cannot be
// registered.
func New(opts Options) (*Writer, error) {
	if len(opts.Brokers) == 0 {
		return nil, errors.New("writer: no brokers")
	}
	for _, b := range opts.Brokers {
		if b == "" {
			return nil, errors.New("writer: empty broker address")
		}
	}
	if opts.ActionsTopic == "" {
		opts.ActionsTopic = actions.DefaultActionsTopic
	}
	if opts.RunsTopic == "" {
		opts.RunsTopic = actions.DefaultRunsTopic
	}
	if opts.DLQTopic == "" {
		opts.DLQTopic = actions.DefaultDLQTopic
	}
	if opts.OutcomesTopic == "" {
		opts.OutcomesTopic = actions.DefaultOutcomesTopic
	}
	if opts.ActionsTopic == opts.RunsTopic || opts.ActionsTopic == opts.DLQTopic || opts.RunsTopic == opts.DLQTopic {
		return nil, fmt.Errorf("writer: topics must differ: actions %q, runs %q, dead letters %q",
			opts.ActionsTopic, opts.RunsTopic, opts.DLQTopic)
	}
	if o := opts.OutcomesTopic; o == opts.ActionsTopic || o == opts.RunsTopic || o == opts.DLQTopic {
		return nil, fmt.Errorf("writer: topics must differ: outcomes %q is also another output topic", o)
	}
	switch {
	case opts.BatchTimeout < 0:
		return nil, fmt.Errorf("writer: negative BatchTimeout %v", opts.BatchTimeout)
	case opts.BatchSize < 0:
		return nil, fmt.Errorf("writer: negative BatchSize %d", opts.BatchSize)
	case opts.WriteTimeout < 0:
		return nil, fmt.Errorf("writer: negative WriteTimeout %v", opts.WriteTimeout)
	case opts.MaxAttempts < 0:
		return nil, fmt.Errorf("writer: negative MaxAttempts %d", opts.MaxAttempts)
	}
	switch opts.Compression {
	case 0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd:
	default:
		return nil, fmt.Errorf("writer: unknown Compression %d", opts.Compression)
	}
	if opts.BatchTimeout == 0 {
		opts.BatchTimeout = DefaultBatchTimeout
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// A nil *kafka.Transport in the interface field would not be nil.
	var transport kafka.RoundTripper = kafka.DefaultTransport
	if opts.Transport != nil {
		transport = opts.Transport
	}

	m, err := newMetrics(opts.Registerer, opts.ActionsTopic, opts.RunsTopic, opts.DLQTopic)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		logger:  logger,
		done:    make(chan struct{}),
		flushed: make(chan struct{}),
	}
	newTopicWriter := func(topic string) *topicWriter {
		log := logger.With("topic", topic)
		return &topicWriter{
			topic: topic,
			w: &kafka.Writer{
				Addr:                   kafka.TCP(opts.Brokers...),
				Topic:                  topic,
				Balancer:               &kafka.Hash{},
				MaxAttempts:            opts.MaxAttempts,
				BatchSize:              opts.BatchSize,
				BatchTimeout:           opts.BatchTimeout,
				WriteTimeout:           opts.WriteTimeout,
				RequiredAcks:           kafka.RequireAll,
				Async:                  false,
				Compression:            opts.Compression,
				Transport:              transport,
				AllowAutoTopicCreation: false,
				ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
					log.Info("kafka writer: " + fmt.Sprintf(msg, args...))
				}),
			},
			logger:   log,
			done:     w.done,
			produced: m.produced.WithLabelValues(topic),
			errors:   m.errors.WithLabelValues(topic),
			retries:  m.retries.WithLabelValues(topic),
			duration: m.duration.WithLabelValues(topic),
		}
	}
	w.acts = newTopicWriter(opts.ActionsTopic)
	w.runs = newTopicWriter(opts.RunsTopic)
	w.dlq = newTopicWriter(opts.DLQTopic)
	w.outsTopic, w.newTW = opts.OutcomesTopic, newTopicWriter
	return w, nil
}

// Publish writes actions to the actions topic and runs to the runs topic,
// both at once, and returns nil once Kafka has acknowledged every one of
// them.
//
// A write that fails or times out may still have been written, so Publish
// retries with backoff whatever was not acknowledged (only the failed
// messages when kafka-go reports them one by one, else all) until it
// succeeds or ctx is done; a retried record can therefore be in Kafka more
// than once, with the same action_id or run_id. Publish gives up early only
// on ErrClosed and on errors a retry cannot fix: a message larger than the
// broker or the writer accepts (kafka.MessageTooLargeError,
// kafka.MessageSizeTooLarge, kafka.RecordListTooLarge) or an invalid record
// or topic. A returned error wraps the cause, ctx.Err() included.
//
// Each action is keyed by [actions.Action.Key], valued by
// [actions.Action.AppendJSON], with headers whenthen-action-id and
// whenthen-workspace; each run by [actions.Run.Key] and
// [actions.Run.AppendJSON], with whenthen-run-id and
// whenthen-workspace. An empty key is sent as a null key, which kafka-go
// spreads round-robin over the partitions; an empty workspace as an empty
// header value.
func (w *Writer) Publish(ctx context.Context, acts []actions.Action, runs []actions.Run) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	switch {
	case len(acts) == 0:
		return w.runs.write(ctx, encodeRuns(runs))
	case len(runs) == 0:
		return w.acts.write(ctx, encodeActions(acts))
	}
	var runErr error
	var wg sync.WaitGroup
	wg.Go(func() { runErr = w.runs.write(ctx, encodeRuns(runs)) })
	actErr := w.acts.write(ctx, encodeActions(acts))
	wg.Wait()
	return errors.Join(actErr, runErr)
}

// DeadLetter writes dls to the dead-letter topic, with the retry semantics
// of [Writer.Publish]. Each message keeps the original key and value
// bytes; the headers whenthen-dlq-reason, whenthen-dlq-detail (at most
// [actions.MaxDetailBytes], with any copy of the value cut out),
// whenthen-source-topic, whenthen-source-partition and
// whenthen-source-offset, and whenthen-source-time when Time is set, say
// where it came from and why. The record's own timestamp is the time of
// writing, so that topic retention counts from the dead-lettering.
//
// The Key and Value slices are referenced, not copied: they must not be
// modified afterwards (after a context error, kafka-go may still be sending
// them).
func (w *Writer) DeadLetter(ctx context.Context, dls []actions.DeadLetter) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	return w.dlq.write(ctx, encodeDeadLetters(dls))
}

// Close stops the writer: later writes fail with ErrClosed, retries in
// progress stop, and the writers flush and close. Close returns when they
// have, or with an error wrapping ctx.Err() when ctx is done first (kafka-go
// writers can hang on close; they are then left to finish in the
// background). Calling Close again returns the first close's result, waiting
// for it no longer than the new ctx allows.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		close(w.done)
		go func() {
			tws := []*topicWriter{w.acts, w.runs, w.dlq}
			w.outsMu.Lock()
			if w.outs != nil {
				tws = append(tws, w.outs)
			}
			w.outsMu.Unlock()
			errs := make([]error, len(tws))
			var wg sync.WaitGroup
			for i, tw := range tws {
				wg.Go(func() {
					if err := tw.w.Close(); err != nil {
						errs[i] = fmt.Errorf("close writer of %s: %w", tw.topic, err)
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				w.closeErr = fmt.Errorf("writer: close: %w", err)
			}
			close(w.flushed)
		}()
	})
	select {
	case <-w.flushed:
		return w.closeErr
	default:
	}
	select {
	case <-w.flushed:
		return w.closeErr
	case <-ctx.Done():
		w.logger.Warn("kafka writers did not close in time; abandoning them", "err", ctx.Err())
		return fmt.Errorf("writer: close: gave up waiting for the kafka writers to flush and close: %w", ctx.Err())
	}
}

// usable returns ErrClosed after Close, else ctx's error, wrapped.
func (w *Writer) usable(ctx context.Context) error {
	if w.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writer: not writing: %w", err)
	}
	return nil
}

// write writes msgs and retries until all are acknowledged, ctx is done, the
// writer is closed, or an error retries cannot fix.
func (tw *topicWriter) write(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	start := time.Now()
	defer func() { tw.duration.Observe(time.Since(start).Seconds()) }()

	pending := msgs
	backoff := retryBackoffMin
	for attempt := 1; ; attempt++ {
		err := tw.w.WriteMessages(ctx, pending...)
		if err == nil {
			tw.produced.Add(float64(len(pending)))
			return nil
		}
		if errors.Is(err, io.ErrClosedPipe) {
			return fmt.Errorf("%w (writing to %s)", ErrClosed, tw.topic)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("writer: write %d messages to %s: %w", len(pending), tw.topic, ctx.Err())
		}
		tw.errors.Inc()
		if failed, ok := failedMessages(pending, err); ok {
			tw.produced.Add(float64(len(pending) - len(failed)))
			if len(failed) == 0 {
				return nil
			}
			pending = failed
		}
		if permanent(err) {
			tw.logger.Error("kafka rejected messages; not retrying", "messages", len(pending), "err", err)
			return fmt.Errorf("writer: write %d messages to %s: %w", len(pending), tw.topic, err)
		}
		wait := syncx.Jitter(backoff)
		tw.logger.Warn("kafka write failed; retrying", "attempt", attempt, "messages", len(pending), "backoff", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("writer: write %d messages to %s: %w (last error: %v)", len(pending), tw.topic, ctx.Err(), err)
		case <-tw.done:
			t.Stop()
			return fmt.Errorf("%w (writing %d messages to %s; last error: %v)", ErrClosed, len(pending), tw.topic, err)
		}
		backoff = min(2*backoff, retryBackoffMax)
		tw.retries.Inc()
	}
}

// failedMessages returns the messages of msgs that err, a kafka.WriteErrors
// with one entry per message, reports failed; ok is false when err does not
// say which failed.
func failedMessages(msgs []kafka.Message, err error) (failed []kafka.Message, ok bool) {
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		return nil, false
	}
	failed = make([]kafka.Message, 0, werrs.Count())
	for i, e := range werrs {
		if e != nil {
			failed = append(failed, msgs[i])
		}
	}
	return failed, true
}

// permanent reports whether err, or any error of a kafka.WriteErrors, is one
// that writing the same messages again cannot fix.
func permanent(err error) bool {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil && permanent(e) {
				return true
			}
		}
		return false
	}
	return TooLarge(err) || errors.Is(err, kafka.InvalidRecord) || errors.Is(err, kafka.InvalidTopic)
}

// TooLarge reports whether Kafka, or kafka-go, refused a write as too
// large (kafka.MessageTooLargeError, kafka.MessageSizeTooLarge,
// kafka.RecordListTooLarge): Publish and DeadLetter return such an error
// without retrying, since the same messages would be refused again.
func TooLarge(err error) bool {
	var mtl kafka.MessageTooLargeError
	return errors.As(err, &mtl) || errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge)
}

// arena holds the keys, values and header values of one write in a single
// buffer: fields are appended, each end recorded, then sliced out once the
// buffer no longer moves. The buffer is never reused, since kafka-go may
// still read it after a write was abandoned.
type arena struct {
	buf  []byte
	ends []int
	next int // index into ends of the next field to take
	pos  int // start of the next field to take
}

func (a *arena) end() { a.ends = append(a.ends, len(a.buf)) }

// take returns the next field, empty but not nil if the field is empty
// (a header value of "" rather than null).
func (a *arena) take() []byte {
	end := a.ends[a.next]
	b := a.buf[a.pos:end:end]
	a.next++
	a.pos = end
	return b
}

// takeKey returns the next field as a message key: nil, a null key, if it
// is empty, which kafka-go spreads round-robin instead of hashing.
func (a *arena) takeKey() []byte {
	if b := a.take(); len(b) > 0 {
		return b
	}
	return nil
}

func encodeActions(as []actions.Action) []kafka.Message {
	if len(as) == 0 {
		return nil
	}
	ar := arena{buf: make([]byte, 0, 400*len(as)), ends: make([]int, 0, 4*len(as))}
	for i := range as {
		a := &as[i]
		ar.buf = append(ar.buf, a.Key()...)
		ar.end()
		ar.buf = a.AppendJSON(ar.buf)
		ar.end()
		ar.buf = append(ar.buf, a.ActionID...)
		ar.end()
		ar.buf = append(ar.buf, a.Workspace...)
		ar.end()
	}
	msgs := make([]kafka.Message, len(as))
	hdrs := make([]kafka.Header, 2*len(as))
	for i := range msgs {
		h := hdrs[2*i : 2*i+2 : 2*i+2]
		msgs[i].Key = ar.takeKey()
		msgs[i].Value = ar.take()
		h[0] = kafka.Header{Key: actions.HeaderActionID, Value: ar.take()}
		h[1] = kafka.Header{Key: actions.HeaderWorkspace, Value: ar.take()}
		msgs[i].Headers = h
	}
	return msgs
}

func encodeRuns(rs []actions.Run) []kafka.Message {
	if len(rs) == 0 {
		return nil
	}
	ar := arena{buf: make([]byte, 0, 400*len(rs)), ends: make([]int, 0, 4*len(rs))}
	for i := range rs {
		r := &rs[i]
		ar.buf = append(ar.buf, r.Key()...)
		ar.end()
		ar.buf = r.AppendJSON(ar.buf)
		ar.end()
		ar.buf = append(ar.buf, r.RunID...)
		ar.end()
		ar.buf = append(ar.buf, r.Workspace...)
		ar.end()
	}
	msgs := make([]kafka.Message, len(rs))
	hdrs := make([]kafka.Header, 2*len(rs))
	for i := range msgs {
		h := hdrs[2*i : 2*i+2 : 2*i+2]
		msgs[i].Key = ar.takeKey()
		msgs[i].Value = ar.take()
		h[0] = kafka.Header{Key: actions.HeaderRunID, Value: ar.take()}
		h[1] = kafka.Header{Key: actions.HeaderWorkspace, Value: ar.take()}
		msgs[i].Headers = h
	}
	return msgs
}

func encodeDeadLetters(dls []actions.DeadLetter) []kafka.Message {
	if len(dls) == 0 {
		return nil
	}
	const nh = 6
	ar := arena{buf: make([]byte, 0, 160*len(dls)), ends: make([]int, 0, nh*len(dls))}
	for i := range dls {
		dl := &dls[i]
		reason := dl.Reason
		if reason == "" {
			reason = "unknown"
		}
		ar.buf = append(ar.buf, reason...)
		ar.end()
		ar.buf = appendDetail(ar.buf, dl.Detail, dl.Value)
		ar.end()
		ar.buf = append(ar.buf, dl.Topic...)
		ar.end()
		ar.buf = strconv.AppendInt(ar.buf, int64(dl.Partition), 10)
		ar.end()
		ar.buf = strconv.AppendInt(ar.buf, dl.Offset, 10)
		ar.end()
		if !dl.Time.IsZero() {
			ar.buf = dl.Time.UTC().AppendFormat(ar.buf, time.RFC3339Nano)
		}
		ar.end()
	}
	msgs := make([]kafka.Message, len(dls))
	hdrs := make([]kafka.Header, nh*len(dls))
	for i := range msgs {
		h := hdrs[nh*i : nh*i+nh : nh*i+nh]
		h[0] = kafka.Header{Key: actions.HeaderDLQReason, Value: ar.take()}
		h[1] = kafka.Header{Key: actions.HeaderDLQDetail, Value: ar.take()}
		h[2] = kafka.Header{Key: actions.HeaderSourceTopic, Value: ar.take()}
		h[3] = kafka.Header{Key: actions.HeaderSourcePartition, Value: ar.take()}
		h[4] = kafka.Header{Key: actions.HeaderSourceOffset, Value: ar.take()}
		h[5] = kafka.Header{Key: actions.HeaderSourceTime, Value: ar.take()}
		if len(h[5].Value) == 0 {
			h = h[:5]
		}
		msgs[i] = kafka.Message{Key: dls[i].Key, Value: dls[i].Value, Headers: h}
	}
	return msgs
}

// appendDetail appends detail with every copy of payload replaced by
// "<payload>", cut to actions.MaxDetailBytes at a UTF-8 boundary.
func appendDetail(dst []byte, detail string, payload []byte) []byte {
	start := len(dst)
	if len(payload) > 0 && len(payload) <= len(detail) {
		dst = append(dst, bytes.ReplaceAll([]byte(detail), payload, []byte("<payload>"))...)
	} else {
		dst = append(dst, detail...)
	}
	if len(dst)-start <= actions.MaxDetailBytes {
		return dst
	}
	cut := start + actions.MaxDetailBytes
	for cut > start && !utf8.RuneStart(dst[cut]) {
		cut--
	}
	return dst[:cut]
}
