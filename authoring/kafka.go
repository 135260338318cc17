package authoring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
)

// KafkaOptions configures a KafkaSource.
type KafkaOptions struct {
	// Brokers are bootstrap addresses, host:port (required).
	Brokers []string
	// Topic is the events topic (required).
	Topic string
	// From: each partition is read from its first message with a
	// timestamp at or after From (required).
	From time.Time
	// To, if set, stops each partition before its first message with a
	// timestamp at or after To; otherwise at its high-water mark when the
	// source opens, so that a live topic still ends.
	To time.Time
	// Dialer dials the partition leaders; default: 10 s timeout.
	Dialer *kafka.Dialer
}

// KafkaSource reads a time range of a topic's history for a backtest.
// It uses no consumer group: one connection per partition, positioned by
// offsets looked up by timestamp; it commits nothing, joins nothing and
// creates no topic, so consumer groups of the topic, the engine's
// included, are untouched. Partitions are merged by message timestamp.
type KafkaSource struct {
	topic string
	parts []*partitionReader
}

type partitionReader struct {
	id    int
	conn  *kafka.Conn
	next  int64 // next offset to read
	end   int64 // offset to stop at (exclusive)
	batch *kafka.Batch
	start int64          // next when the batch was fetched
	head  *kafka.Message // the next message, read ahead
	done  bool
	// from and to bound the message timestamps (to zero: unbounded).
	from, to time.Time
}

// NewKafkaSource looks the topic's partitions up and positions a reader
// on each. Close it.
func NewKafkaSource(ctx context.Context, opts KafkaOptions) (*KafkaSource, error) {
	if len(opts.Brokers) == 0 || opts.Topic == "" || opts.From.IsZero() {
		return nil, errors.New("authoring: KafkaOptions.Brokers, Topic and From are required")
	}
	if !opts.To.IsZero() && !opts.To.After(opts.From) {
		return nil, errors.New("authoring: KafkaOptions.To must be after From")
	}
	if opts.Dialer == nil {
		opts.Dialer = &kafka.Dialer{Timeout: 10 * time.Second}
	}
	client := &kafka.Client{Addr: kafka.TCP(opts.Brokers...), Timeout: 10 * time.Second}
	// A metadata request of this client never creates the topic.
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{opts.Topic}})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	var topic *kafka.Topic
	for i := range meta.Topics {
		if meta.Topics[i].Name == opts.Topic {
			topic = &meta.Topics[i]
		}
	}
	switch {
	case topic == nil:
		return nil, fmt.Errorf("kafka: topic %q not found", opts.Topic)
	case topic.Error != nil:
		return nil, fmt.Errorf("kafka: topic %q: %w", opts.Topic, topic.Error)
	}
	s := &KafkaSource{topic: opts.Topic}
	for _, p := range topic.Partitions {
		pr, err := openPartition(ctx, opts, p)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("kafka: %s/%d: %w", opts.Topic, p.ID, err)
		}
		s.parts = append(s.parts, pr)
	}
	return s, nil
}

func openPartition(ctx context.Context, opts KafkaOptions, p kafka.Partition) (*partitionReader, error) {
	if p.Error != nil {
		return nil, p.Error
	}
	conn, err := opts.Dialer.DialPartition(ctx, "tcp", "", p)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	pr := &partitionReader{id: p.ID, conn: conn, from: opts.From, to: opts.To}
	hw, err := conn.ReadLastOffset()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("high-water mark: %w", err)
	}
	// ReadOffset gives -1 when no message is that recent.
	if pr.next, err = conn.ReadOffset(opts.From); err != nil {
		conn.Close()
		return nil, fmt.Errorf("offset for --from: %w", err)
	}
	if pr.next < 0 || pr.next > hw {
		pr.next = hw
	}
	pr.end = hw
	if !opts.To.IsZero() {
		to, err := conn.ReadOffset(opts.To)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("offset for --to: %w", err)
		}
		if to >= 0 && to < hw {
			pr.end = to
		}
	}
	_ = conn.SetDeadline(time.Time{})
	if pr.next >= pr.end {
		pr.done = true
		return pr, nil
	}
	if _, err := conn.Seek(pr.next, kafka.SeekAbsolute); err != nil {
		conn.Close()
		return nil, fmt.Errorf("seek to %d: %w", pr.next, err)
	}
	return pr, nil
}

// Next returns the earliest (by timestamp) of the partitions' next
// messages; io.EOF when every partition reached its end.
func (s *KafkaSource) Next(ctx context.Context) (Message, error) {
	var best *partitionReader
	for _, p := range s.parts {
		if err := p.fill(ctx); err != nil {
			return Message{}, fmt.Errorf("kafka: %s/%d: %w", s.topic, p.id, err)
		}
		if p.head != nil && (best == nil || p.head.Time.Before(best.head.Time)) {
			best = p
		}
	}
	if best == nil {
		return Message{}, io.EOF
	}
	m := best.head
	best.head = nil
	return Message{Key: m.Key, Value: m.Value, Where: fmt.Sprintf("%s/%d@%d", s.topic, m.Partition, m.Offset)}, nil
}

// fill reads the partition's next message into head, unless it is at its end.
func (p *partitionReader) fill(ctx context.Context) error {
	for p.head == nil && !p.done {
		if p.next >= p.end {
			p.done = true
			return p.closeBatch()
		}
		if p.batch == nil {
			dl := time.Now().Add(30 * time.Second)
			if d, ok := ctx.Deadline(); ok && d.Before(dl) {
				dl = d
			}
			_ = p.conn.SetReadDeadline(dl)
			p.batch = p.conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 500 * time.Millisecond})
			p.start = p.next
		}
		m, err := p.batch.ReadMessage()
		if err != nil {
			if cerr := p.closeBatch(); cerr != nil {
				return cerr
			}
			if off, _ := p.conn.Offset(); off > p.next {
				p.next = off
			}
			if p.next == p.start {
				// An empty fetch below the end: only records the reader
				// skips (transaction markers) remain. Stop here rather
				// than wait.
				p.done = true
			}
			continue
		}
		if m.Offset < p.next {
			continue
		}
		p.next = m.Offset + 1
		if m.Offset >= p.end {
			p.done = true
			return p.closeBatch()
		}
		// The offsets were found by timestamp, which assumes timestamps
		// grow with offsets; a message stamped outside the window is
		// skipped all the same.
		if !m.Time.IsZero() && (m.Time.Before(p.from) || !p.to.IsZero() && !m.Time.Before(p.to)) {
			continue
		}
		p.head = &m
	}
	return nil
}

func (p *partitionReader) closeBatch() error {
	if p.batch == nil {
		return nil
	}
	err := p.batch.Close()
	p.batch = nil
	return err
}

// Close closes the connections.
func (s *KafkaSource) Close() error {
	for _, p := range s.parts {
		_ = p.closeBatch()
		p.conn.Close()
	}
	s.parts = nil
	return nil
}
