// Package consumer reads a Kafka topic as a member of a consumer group and
// hands each partition's messages, in order, to a [Handler] in batches,
// committing a batch's offsets only after the handler returned nil for it
// (every CommitInterval, up to the contiguous done offset). It knows
// nothing of what the messages hold: the engine service's handler is
// package pipeline's Pipeline.Handle over the input topic (docs/events.md);
// `whenthen deliver` and `whenthen history` consume the output topics
// with it too.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/internal/syncx"
)

// Defaults of Options.
const (
	DefaultBatchSize         = 500
	DefaultLinger            = 5 * time.Millisecond
	DefaultCommitInterval    = time.Second
	DefaultLagInterval       = 15 * time.Second
	DefaultMaxWait           = time.Second
	DefaultFetchMaxBytes     = 10 << 20
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultSessionTimeout    = 30 * time.Second
	DefaultRebalanceTimeout  = 30 * time.Second
	DefaultJoinGroupBackoff  = 2 * time.Second
	DefaultDrainTimeout      = 10 * time.Second
)

// Bounds of the consumer's own retry backoff (fetch errors, a handler that
// fails): it doubles from the first to the second, each wait drawn from
// [d/2, d].
const (
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = 5 * time.Second
)

// requestTimeout bounds one offset, lag or ping request to the brokers.
const requestTimeout = 5 * time.Second

// Options configure a [Consumer]. Zero values take the defaults
// given with each field.
type Options struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string
	// GroupID is the consumer group. Required: offsets are only ever
	// committed through the group.
	GroupID string
	// Topic is the topic read. Required.
	Topic string

	// Dialer carries TLS and SASL settings for the kafka-go Reader; nil
	// means a plain dialer with a 10s timeout.
	Dialer *kafka.Dialer
	// Transport carries the same settings for the requests the consumer
	// makes itself (committed offsets, lag, Ping); nil means
	// kafka.DefaultTransport. The consumer never closes it.
	Transport *kafka.Transport

	// BatchSize is the most messages of one partition handed to the
	// handler at once; default 500.
	BatchSize int
	// Linger is how long a partition's worker waits for more messages once
	// it has one and fewer than BatchSize are queued; default 5ms. Negative
	// means no wait: a batch is what is queued.
	Linger time.Duration
	// QueueSize bounds the messages fetched but not yet taken by each
	// partition's worker; default BatchSize. A full queue stops the fetch
	// loop (backpressure), never grows; since kafka-go's group reader
	// cannot pause one partition, that holds every partition of this
	// member, so QueueSize is also how far a slow partition may fall behind
	// before it holds the others.
	QueueSize int

	// CommitInterval is how often the done offsets are committed; default
	// 1s. They are also committed once at shutdown.
	CommitInterval time.Duration
	// LagInterval is how often the group's lag is read from the brokers;
	// default 15s; negative disables the lag gauge.
	LagInterval time.Duration

	// MaxWait is the longest a fetch request waits for data; default 1s.
	// It is also kafka-go's deadline for the fetch's answer: a broker
	// whose round trip nears it is never read from (at 250ms, a 200ms
	// round trip stalled every partition). Reader.Close waits for the
	// fetch in flight, so keep it short.
	MaxWait time.Duration
	// MaxBytes is the most bytes one fetch returns; default 10 MiB. It
	// must exceed the largest message the topic accepts: kafka-go
	// cannot read a message larger than it.
	MaxBytes int
	// HeartbeatInterval, SessionTimeout, RebalanceTimeout and
	// JoinGroupBackoff are the consumer group timings; defaults 3s, 30s,
	// 30s and 2s.
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	JoinGroupBackoff  time.Duration
	// StartOffset is where a partition without a committed offset starts:
	// kafka.FirstOffset (default) or kafka.LastOffset.
	StartOffset int64

	// DrainTimeout bounds the shutdown of Run once its context is done:
	// the batches in flight get half of it (then their context is
	// cancelled, and they get another eighth to return), the final commit
	// runs until seven eighths, closing the reader gets the rest.
	// Default 10s.
	DrainTimeout time.Duration

	// Registerer receives the consumer metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives the consumer's log; nil discards it. It never
	// contains message contents: topics, partitions and offsets only.
	Logger *slog.Logger
}

// Handler processes one batch: messages of one partition, in offset order,
// each after the previous batch of that partition returned nil. A nil
// return means the batch is done (its outputs acknowledged): its offsets
// may be committed. On error the same batch is handed over again, after a
// backoff, until it succeeds or the consumer shuts down; the handler is
// expected to retry transient failures itself and return an error only
// when its context is done. The slice is reused after the call returns;
// the messages' keys and values are not.
type Handler func(ctx context.Context, msgs []kafka.Message) error

// Consumer reads a topic as a member of a consumer group, with a
// kafka-go Reader driven by FetchMessage (never ReadMessage, which commits
// before processing), and hands messages to a [Handler] in per-partition
// batches.
//
// Fetched messages are routed by partition into bounded queues; each
// partition has one worker goroutine, started when its first message
// arrives and kept until shutdown, so partitions are handled in parallel
// while each stays in order. A worker takes up to BatchSize messages, or
// what arrived within Linger of the first, calls the handler, and marks the
// batch's offsets done.
//
// Offsets are committed every CommitInterval and at shutdown, per
// partition up to the highest offset below which every fetched message is
// done (the contiguous done prefix), so a commit never covers a message
// whose outputs are not acknowledged. A commit never moves an offset
// backwards from the consumer's own view: it is skipped when the group's
// committed offset, as the broker reports it just before, or the
// consumer's last commit, is already at or past it (after a rebalance
// another member may own the partition and be ahead).
//
// Rebalances are kafka-go's: the Reader joins the group and restarts its
// partitions from the committed offsets. Messages at offsets below those
// already fetched for a partition (a redelivery after a rebalance) are
// dropped, since the first copy is handled; messages of a partition that
// moved to another member may still be handled here, which the engine's
// dedup makes harmless (kafka-go #1398, #1308).
//
// A fetch error is counted and retried with backoff; io.EOF from a reader
// that is not closed is retried too (kafka-go #1352). The group's lag is
// read from the brokers every LagInterval (kafka-go's Lag is -1 with a
// GroupID): each partition's end offset minus the group's committed one.
type Consumer struct {
	opts   Options
	log    *slog.Logger
	m      *consumerMetrics
	client *kafka.Client

	started atomic.Bool

	mu    sync.Mutex
	parts map[int]*partition
}

// New returns a consumer configured by opts. It does not connect:
// Run does.
func New(opts Options) (*Consumer, error) {
	if len(opts.Brokers) == 0 {
		return nil, errors.New("consumer: Options.Brokers is empty")
	}
	for _, b := range opts.Brokers {
		if b == "" {
			return nil, errors.New("consumer: empty broker address")
		}
	}
	if opts.GroupID == "" {
		return nil, errors.New("consumer: Options.GroupID is required")
	}
	if opts.Topic == "" {
		return nil, errors.New("consumer: Options.Topic is required")
	}
	for name, d := range map[string]time.Duration{
		"CommitInterval": opts.CommitInterval, "MaxWait": opts.MaxWait, "HeartbeatInterval": opts.HeartbeatInterval,
		"SessionTimeout": opts.SessionTimeout, "RebalanceTimeout": opts.RebalanceTimeout,
		"JoinGroupBackoff": opts.JoinGroupBackoff, "DrainTimeout": opts.DrainTimeout,
	} {
		if d < 0 {
			return nil, fmt.Errorf("consumer: negative Options.%s %v", name, d)
		}
	}
	if opts.BatchSize < 0 || opts.QueueSize < 0 || opts.MaxBytes < 0 {
		return nil, errors.New("consumer: Options.BatchSize, QueueSize and MaxBytes must not be negative")
	}
	switch opts.StartOffset {
	case 0:
		opts.StartOffset = kafka.FirstOffset
	case kafka.FirstOffset, kafka.LastOffset:
	default:
		return nil, fmt.Errorf("consumer: Options.StartOffset %d is neither kafka.FirstOffset nor kafka.LastOffset", opts.StartOffset)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = opts.BatchSize
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultFetchMaxBytes
	}
	def(&opts.Linger, DefaultLinger)
	def(&opts.CommitInterval, DefaultCommitInterval)
	def(&opts.LagInterval, DefaultLagInterval)
	def(&opts.MaxWait, DefaultMaxWait)
	def(&opts.HeartbeatInterval, DefaultHeartbeatInterval)
	def(&opts.SessionTimeout, DefaultSessionTimeout)
	def(&opts.RebalanceTimeout, DefaultRebalanceTimeout)
	def(&opts.JoinGroupBackoff, DefaultJoinGroupBackoff)
	def(&opts.DrainTimeout, DefaultDrainTimeout)
	if opts.Dialer == nil {
		opts.Dialer = &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, ClientID: "whenthen"}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newConsumerMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	var transport kafka.RoundTripper = kafka.DefaultTransport
	if opts.Transport != nil {
		transport = opts.Transport
	}
	return &Consumer{
		opts:   opts,
		log:    logger.With("topic", opts.Topic, "group", opts.GroupID),
		m:      m,
		client: &kafka.Client{Addr: kafka.TCP(opts.Brokers...), Transport: transport, Timeout: requestTimeout},
		parts:  map[int]*partition{},
	}, nil
}

// Ping checks that the brokers answer a request.
func (c *Consumer) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := c.client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err != nil {
		return err
	}
	return res.Error
}

func (c *Consumer) readerConfig() kafka.ReaderConfig {
	log := c.log
	return kafka.ReaderConfig{
		Brokers:           c.opts.Brokers,
		GroupID:           c.opts.GroupID,
		Topic:             c.opts.Topic,
		Dialer:            c.opts.Dialer,
		QueueCapacity:     max(100, c.opts.BatchSize),
		MinBytes:          1,
		MaxBytes:          c.opts.MaxBytes,
		MaxWait:           c.opts.MaxWait,
		HeartbeatInterval: c.opts.HeartbeatInterval,
		SessionTimeout:    c.opts.SessionTimeout,
		RebalanceTimeout:  c.opts.RebalanceTimeout,
		JoinGroupBackoff:  c.opts.JoinGroupBackoff,
		StartOffset:       c.opts.StartOffset,
		// Partitions added to the topic join the group's assignment.
		WatchPartitionChanges: true,
		ReadLagInterval:       -1, // Lag() is -1 with a GroupID anyway; the lag loop asks the brokers
		CommitInterval:        0,  // synchronous: CommitMessages returns the broker's answer
		Logger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("kafka reader: " + fmt.Sprintf(msg, args...))
		}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka reader: " + fmt.Sprintf(msg, args...))
		}),
	}
}

// Run consumes until ctx is done, handing batches to h, then drains: it
// stops fetching, lets the workers finish the batches they are handling
// (not the ones queued, which are redelivered later), commits the done
// offsets and closes the reader, all within DrainTimeout; a reader whose
// Close hangs (kafka-go #1248) is abandoned. Run may be called once; it
// returns nil after a drain, an error only if called again.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("consumer: Consumer.Run: nil handler")
	}
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("consumer: Consumer.Run called twice")
	}
	r := kafka.NewReader(c.readerConfig())
	c.log.Info("consumer started", "brokers", len(c.opts.Brokers))

	// The workers' context outlives ctx: batches in flight are finished
	// during the drain, and cancelled only at its deadline.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopping := make(chan struct{})
	var workers sync.WaitGroup

	var loops sync.WaitGroup
	loops.Go(func() { c.commitLoop(ctx, r) })
	if c.opts.LagInterval > 0 {
		loops.Go(func() { c.lagLoop(ctx) })
	}

	c.fetchLoop(ctx, r, func(p *partition) {
		workers.Go(func() { c.work(work, stopping, p, h) })
	})

	// Drain: the batches in flight get half of DrainTimeout, then are
	// cancelled; the final commit has until 7/8 of it, closing the reader
	// the rest.
	start := time.Now()
	d := c.opts.DrainTimeout
	c.log.Info("consumer draining", "timeout", d)
	close(stopping)
	loops.Wait()
	if !syncx.WaitTimeout(&workers, time.Until(start.Add(d/2))) {
		c.log.Warn("batches in flight did not finish in time; cancelling them")
		cancelWork()
		syncx.WaitTimeout(&workers, time.Until(start.Add(d*5/8)))
	}
	cctx, cancel := context.WithDeadline(context.Background(), start.Add(d*7/8))
	if err := c.commit(cctx, r); err != nil {
		c.log.Warn("final offset commit failed", "err", err)
	}
	cancel()
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	t := time.NewTimer(max(time.Until(start.Add(d)), 0))
	defer t.Stop()
	select {
	case err := <-closed:
		if err != nil {
			c.log.Warn("closing the kafka reader failed", "err", err)
		}
	case <-t.C:
		c.log.Warn("kafka reader did not close in time; abandoning it")
	}
	c.log.Info("consumer stopped", "drain", time.Since(start).Round(time.Millisecond))
	return nil
}

// fetchLoop fetches until ctx is done, routing each message to its
// partition's queue; start starts the worker of a new partition.
func (c *Consumer) fetchLoop(ctx context.Context, r *kafka.Reader, start func(*partition)) {
	backoff := retryBackoffMin
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.m.fetchErrors.Inc()
			// io.EOF also comes back from a reader that is not closed
			// (kafka-go #1352): fetch again.
			if errors.Is(err, io.EOF) {
				c.log.Info("kafka fetch returned EOF; fetching again", "err", err)
			} else {
				c.log.Warn("kafka fetch failed; fetching again", "err", err, "backoff", backoff)
			}
			if !syncx.Sleep(ctx, syncx.Jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, retryBackoffMax)
			continue
		}
		backoff = retryBackoffMin
		c.m.messages.Inc()
		p := c.partition(m.Partition, start)
		if !p.t.add(m.Offset) {
			c.m.redelivered.Inc()
			continue
		}
		c.m.inflight.Inc()
		select {
		case p.queue <- m:
		case <-ctx.Done():
			// Fetched, tracked, never done: its offset is not committed.
			return
		}
	}
}

func (c *Consumer) partition(id int, start func(*partition)) *partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[id]
	if p == nil {
		p = &partition{id: id, queue: make(chan kafka.Message, c.opts.QueueSize), t: newTracker()}
		c.parts[id] = p
		c.log.Info("partition worker started", "partition", id)
		start(p)
	}
	return p
}

func (c *Consumer) partitions() []*partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*partition, 0, len(c.parts))
	for _, p := range c.parts {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *partition) int { return a.id - b.id })
	return out
}

// partition is one input partition's queue, worker state and offsets.
type partition struct {
	id    int
	queue chan kafka.Message
	t     *tracker
}

// work is a partition's worker: it takes batches and hands them to h until
// stopping is closed (or ctx, the drain deadline, is done).
func (c *Consumer) work(ctx context.Context, stopping <-chan struct{}, p *partition, h Handler) {
	buf := make([]kafka.Message, 0, c.opts.BatchSize)
	var timer *time.Timer
	if c.opts.Linger > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
	}
	log := c.log.With("partition", p.id)
	for {
		batch := c.nextBatch(stopping, p.queue, buf, timer)
		if len(batch) == 0 {
			return
		}
		backoff := retryBackoffMin
		for {
			err := h(ctx, batch)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				log.Warn("batch abandoned at shutdown; its messages will be redelivered",
					"first_offset", batch[0].Offset, "last_offset", batch[len(batch)-1].Offset, "err", err)
				return
			}
			c.m.handlerErrors.Inc()
			log.Warn("batch failed; handling it again", "first_offset", batch[0].Offset,
				"last_offset", batch[len(batch)-1].Offset, "backoff", backoff, "err", err)
			if !syncx.Sleep(ctx, syncx.Jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, retryBackoffMax)
		}
		offs := make([]int64, len(batch))
		for i := range batch {
			offs[i] = batch[i].Offset
		}
		p.t.done(offs)
		c.m.inflight.Sub(float64(len(batch)))
		select {
		case <-stopping:
			return
		default:
		}
	}
}

// nextBatch waits for a partition's next message and returns it with those
// that follow: up to BatchSize, waiting at most Linger after the first. It
// returns nil when stopping is closed first.
func (c *Consumer) nextBatch(stopping <-chan struct{}, q <-chan kafka.Message, buf []kafka.Message, timer *time.Timer) []kafka.Message {
	buf = buf[:0]
	select {
	case m := <-q:
		buf = append(buf, m)
	case <-stopping:
		return nil
	}
	n := c.opts.BatchSize
	for len(buf) < n {
		select {
		case m := <-q:
			buf = append(buf, m)
			continue
		default:
		}
		break
	}
	if len(buf) == n || timer == nil {
		return buf
	}
	timer.Reset(c.opts.Linger)
	defer timer.Stop()
	for len(buf) < n {
		select {
		case m := <-q:
			buf = append(buf, m)
		case <-timer.C:
			return buf
		case <-stopping:
			return nil
		}
	}
	return buf
}

// commitLoop commits the done offsets every CommitInterval until ctx is
// done.
func (c *Consumer) commitLoop(ctx context.Context, r *kafka.Reader) {
	t := time.NewTicker(c.opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, requestTimeout)
		if err := c.commit(cctx, r); err != nil && ctx.Err() == nil {
			c.log.Warn("offset commit failed; trying again at the next interval", "err", err)
		}
		cancel()
	}
}

// commit commits, for each partition whose contiguous done offset moved
// past what this consumer last committed, that offset; partitions where
// the group's committed offset is already there are skipped.
func (c *Consumer) commit(ctx context.Context, r *kafka.Reader) error {
	type cand struct {
		p   *partition
		pos int64 // the offset to commit: the next one to consume
	}
	var cands []cand
	for _, p := range c.partitions() {
		if pos, ok := p.t.toCommit(); ok {
			cands = append(cands, cand{p, pos})
		}
	}
	if len(cands) == 0 {
		return nil
	}
	// Never move the group's offset backwards: after a rebalance another
	// member may own a partition and have committed further. If the
	// brokers cannot say, our own last commit is the floor.
	ids := make([]int, len(cands))
	for i, cd := range cands {
		ids[i] = cd.p.id
	}
	if group, err := c.committedOffsets(ctx, ids); err == nil {
		kept := cands[:0]
		for _, cd := range cands {
			if g, ok := group[cd.p.id]; ok && g >= cd.pos {
				cd.p.t.committedAt(g)
				c.log.Debug("commit skipped: the group is already past it", "partition", cd.p.id, "offset", cd.pos, "group_offset", g)
				continue
			}
			kept = append(kept, cd)
		}
		cands = kept
		if len(cands) == 0 {
			return nil
		}
	} else {
		c.log.Debug("reading committed offsets failed; committing on our own view", "err", err)
	}
	msgs := make([]kafka.Message, len(cands))
	for i, cd := range cands {
		// kafka-go commits a message's offset + 1.
		msgs[i] = kafka.Message{Topic: c.opts.Topic, Partition: cd.p.id, Offset: cd.pos - 1}
	}
	if err := r.CommitMessages(ctx, msgs...); err != nil {
		c.m.commitErrors.Inc()
		return fmt.Errorf("commit offsets: %w", err)
	}
	c.m.commits.Inc()
	for _, cd := range cands {
		cd.p.t.committedAt(cd.pos)
		c.m.committed.WithLabelValues(strconv.Itoa(cd.p.id)).Set(float64(cd.pos))
	}
	return nil
}

// committedOffsets asks the group coordinator for the group's committed
// offsets of partitions; a partition without a commit is left out.
func (c *Consumer) committedOffsets(ctx context.Context, partitions []int) (map[int]int64, error) {
	res, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: c.opts.GroupID,
		Topics:  map[string][]int{c.opts.Topic: partitions},
	})
	if err != nil {
		return nil, err
	}
	if errors.Is(res.Error, kafka.GroupIdNotFound) {
		return map[int]int64{}, nil // a group that never committed
	}
	if res.Error != nil {
		return nil, res.Error
	}
	out := map[int]int64{}
	for _, p := range res.Topics[c.opts.Topic] {
		if p.Error == nil && p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// lagLoop sets the lag gauge every LagInterval, from the brokers: the end
// offset of each partition minus the group's committed offset (or the
// partition's first offset when the group has none).
func (c *Consumer) lagLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.LagInterval)
	defer t.Stop()
	for {
		if err := c.UpdateLag(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("reading consumer lag failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// UpdateLag reads the group's lag from the brokers and sets the lag gauge.
// Run calls it every LagInterval; tests call it to read the lag now.
func (c *Consumer) UpdateLag(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	err := c.updateLag(ctx)
	if err != nil {
		c.m.lagErrors.Inc()
	}
	return err
}

func (c *Consumer) updateLag(ctx context.Context) error {
	meta, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.opts.Topic}})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var ids []int
	for _, t := range meta.Topics {
		if t.Name != c.opts.Topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("topic %s has no partitions", c.opts.Topic)
	}
	// Kafka refuses a partition twice in one ListOffsets request: first
	// and last offsets are asked for separately.
	first := make([]kafka.OffsetRequest, len(ids))
	last := make([]kafka.OffsetRequest, len(ids))
	for i, id := range ids {
		first[i], last[i] = kafka.FirstOffsetOf(id), kafka.LastOffsetOf(id)
	}
	starts, err := c.listOffsets(ctx, first, func(po kafka.PartitionOffsets) int64 { return po.FirstOffset })
	if err != nil {
		return err
	}
	ends, err := c.listOffsets(ctx, last, func(po kafka.PartitionOffsets) int64 { return po.LastOffset })
	if err != nil {
		return err
	}
	group, err := c.committedOffsets(ctx, ids)
	if err != nil {
		return fmt.Errorf("committed offsets: %w", err)
	}
	for id, end := range ends {
		from, ok := group[id]
		if !ok || from < starts[id] {
			from = starts[id]
		}
		c.m.lag.WithLabelValues(strconv.Itoa(id)).Set(float64(max(end-from, 0)))
	}
	return nil
}

// listOffsets sends one ListOffsets request for the topic and
// returns the offset get picks of each partition that answered.
func (c *Consumer) listOffsets(ctx context.Context, reqs []kafka.OffsetRequest, get func(kafka.PartitionOffsets) int64) (map[int]int64, error) {
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.opts.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[int]int64{}
	for _, po := range res.Topics[c.opts.Topic] {
		if po.Error == nil && get(po) >= 0 {
			out[po.Partition] = get(po)
		}
	}
	return out, nil
}

// tracker follows the offsets of one partition: those fetched, in fetch
// order, and which are done. Everything below the first offset not done is
// committable: the contiguous done prefix.
type tracker struct {
	mu sync.Mutex
	// pending holds the fetched offsets not yet below the committable
	// position, ascending, from index head on.
	pending []pendingOffset
	head    int
	// next is one past the highest offset fetched: an offset below it is a
	// redelivery of one already handled or in hand.
	next int64
	// doneTo is the committable position: every fetched offset below it
	// is done. -1 until the first is.
	doneTo int64
	// committed is the highest position committed by us, or seen committed
	// by the group. -1 until known.
	committed int64
}

type pendingOffset struct {
	off  int64
	done bool
}

func newTracker() *tracker { return &tracker{next: -1, doneTo: -1, committed: -1} }

// add records a fetched offset. It reports false for a redelivery (an
// offset below one already fetched), which is not to be handled again.
func (t *tracker) add(off int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if off < t.next {
		return false
	}
	t.next = off + 1
	t.pending = append(t.pending, pendingOffset{off: off})
	return true
}

// done marks offsets done and advances the committable position over the
// done prefix.
func (t *tracker) done(offs []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.pending[t.head:]
	for _, off := range offs {
		i, found := slices.BinarySearchFunc(live, off, func(p pendingOffset, off int64) int {
			switch {
			case p.off < off:
				return -1
			case p.off > off:
				return 1
			}
			return 0
		})
		if found {
			live[i].done = true
		}
	}
	for t.head < len(t.pending) && t.pending[t.head].done {
		t.doneTo = t.pending[t.head].off + 1
		t.head++
	}
	// Compact once the consumed head is most of the slice.
	if t.head > 64 && t.head*2 > len(t.pending) {
		n := copy(t.pending, t.pending[t.head:])
		clear(t.pending[n:])
		t.pending = t.pending[:n]
		t.head = 0
	}
}

// toCommit returns the committable position if it is past the last one
// committed.
func (t *tracker) toCommit() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.doneTo, t.doneTo > t.committed
}

// committedAt records that the group's offset is at pos (ours or another
// member's); it never moves back.
func (t *tracker) committedAt(pos int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.committed = max(t.committed, pos)
}

// consumerMetrics are the consumer's metrics. The partition label takes
// the topic's partition numbers.
type consumerMetrics struct {
	messages      prometheus.Counter
	redelivered   prometheus.Counter
	fetchErrors   prometheus.Counter
	commits       prometheus.Counter
	commitErrors  prometheus.Counter
	handlerErrors prometheus.Counter
	lagErrors     prometheus.Counter
	inflight      prometheus.Gauge
	lag           *prometheus.GaugeVec
	committed     *prometheus.GaugeVec
}

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	m := &consumerMetrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_consumer_messages_total", Help: "Messages fetched from the consumed topic (the input topic of whenthen run).",
		}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_consumer_redelivered_messages_total",
			Help: "Fetched messages dropped because an earlier copy was already fetched (redelivery after a rebalance).",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_consumer_fetch_errors_total", Help: "Failed fetches from the consumed topic (each is retried).",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_consumer_commits_total", Help: "Offset commits acknowledged by the group coordinator.",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_consumer_commit_errors_total", Help: "Offset commits that failed (retried at the next interval).",
		}),
		handlerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_consumer_batch_errors_total", Help: "Batches the handler returned with an error and that were handed over again.",
		}),
		lagErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_consumer_lag_errors_total", Help: "Failed attempts to read the consumer lag from the brokers.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_consumer_inflight_messages", Help: "Messages fetched and not yet done (queued or being handled).",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "whenthen_consumer_lag",
			Help: "Messages of the consumed topic after the group's committed offset, by partition, as the brokers report it (the same on every member of the group).",
		}, []string{"partition"}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "whenthen_consumer_committed_offset", Help: "The last offset this consumer committed, by partition.",
		}, []string{"partition"}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.messages, m.redelivered, m.fetchErrors, m.commits, m.commitErrors, m.handlerErrors,
		m.lagErrors, m.inflight, m.lag, m.committed}
	for i, col := range cs {
		if err := reg.Register(col); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("consumer: register consumer metrics: %w", err)
		}
	}
	return m, nil
}
