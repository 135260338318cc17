package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/syncx"
)

// recordKind is what a topic holds.
type recordKind int

const (
	kindRun recordKind = iota
	kindAction
	kindOutcome
)

// Bounds of the backoff between attempts at writing a batch the
// database refused: it doubles from the first to the second, each wait
// drawn from [d/2, d].
const (
	writeBackoffMin = 100 * time.Millisecond
	writeBackoffMax = 10 * time.Second
)

// topicConsumer consumes one topic into the store.
type topicConsumer struct {
	s     *Service
	topic string
	kind  recordKind
	c     *consumer.Consumer
	log   *slog.Logger

	mu      sync.Mutex
	stalled map[int]error // partition → the error its batch is retrying on
}

// handle is the consumer's handler: it decodes one partition's batch,
// dead-letters what cannot be decoded, and writes the rest in one
// transaction, again and again with backoff until the database takes it
// or ctx is done. Only then does it return nil, and the consumer may
// commit the batch's offsets.
func (tc *topicConsumer) handle(ctx context.Context, msgs []kafka.Message) error {
	var b store.Batch
	var dls []actions.DeadLetter
	for i := range msgs {
		m := &msgs[i]
		var err error
		switch tc.kind {
		case kindRun:
			var r store.RunRow
			if r, err = store.DecodeRun(m.Value); err == nil {
				b.Runs = append(b.Runs, r)
			}
		case kindAction:
			var a store.ActionRow
			if a, err = store.DecodeAction(m.Value); err == nil {
				b.Actions = append(b.Actions, a)
			}
		case kindOutcome:
			var o store.OutcomeRow
			if o, err = store.DecodeOutcome(m.Value); err == nil {
				b.Outcomes = append(b.Outcomes, o)
			}
		}
		if err == nil {
			continue
		}
		reason, detail := store.ReasonInvalidJSON, err.Error()
		var de *store.DecodeError
		if errors.As(err, &de) {
			reason, detail = de.Reason, de.Detail
		}
		tc.s.m.deadLetters.WithLabelValues(tc.topic, reason).Inc()
		dls = append(dls, actions.DeadLetter{Key: m.Key, Value: m.Value, Reason: reason, Detail: detail,
			Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time})
	}
	if len(dls) > 0 {
		tc.log.Warn("records dead-lettered", "partition", msgs[0].Partition, "count", len(dls), "first_offset", dls[0].Offset,
			"reason", dls[0].Reason, "detail", dls[0].Detail)
		if err := tc.retry(ctx, msgs[0].Partition, "dead_letter", func() error { return tc.s.dlq.DeadLetter(ctx, dls) }); err != nil {
			return err
		}
	}
	return tc.retry(ctx, msgs[0].Partition, "write", func() error {
		_, err := tc.s.store.Write(ctx, &b)
		return err
	})
}

// retry runs fn until it succeeds or ctx is done, waiting with backoff
// between attempts; meanwhile the partition counts as stalled (/readyz).
func (tc *topicConsumer) retry(ctx context.Context, partition int, stage string, fn func() error) error {
	backoff := writeBackoffMin
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				tc.setStalled(partition, nil)
				tc.log.Info("batch written after retries", "partition", partition, "stage", stage, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", stage, ctx.Err())
		}
		tc.s.m.retries.WithLabelValues(tc.topic, stage).Inc()
		tc.setStalled(partition, err)
		wait := syncx.Jitter(backoff)
		tc.log.Warn("batch failed; retrying", "partition", partition, "stage", stage, "attempt", attempt, "backoff", wait, "err", err)
		if !syncx.Sleep(ctx, wait) {
			return fmt.Errorf("%s: %w (last error: %v)", stage, ctx.Err(), err)
		}
		backoff = min(2*backoff, writeBackoffMax)
	}
}

func (tc *topicConsumer) setStalled(partition int, err error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.stalled == nil {
		tc.stalled = map[int]error{}
	}
	_, was := tc.stalled[partition]
	switch {
	case err == nil && was:
		delete(tc.stalled, partition)
		tc.s.m.stalled.Dec()
	case err != nil:
		if !was {
			tc.s.m.stalled.Inc()
		}
		tc.stalled[partition] = err
	}
}

// stall returns the error a batch of this topic is retrying on, if any.
func (tc *topicConsumer) stall() error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for p, err := range tc.stalled {
		return fmt.Errorf("%s partition %d: writing a batch keeps failing (retrying): %w", tc.topic, p, err)
	}
	return nil
}
