package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/syncx"
)

// DLQReasonInvalid is the dead-letter reason of an action record that
// cannot be read (not JSON, no action_id, an unknown type).
const DLQReasonInvalid = "invalid_action"

// handle is the consumer's handler: one batch of action records of one
// partition. Each action is routed to its destinations and scheduled in
// their Redis queues (one script per destination, all in one pipeline);
// an action no destination takes gets its skipped/no_destination outcome,
// one that cannot be read is dead-lettered. The batch is done, and its
// offsets may be committed, once all of that is in Redis and Kafka: the
// deliveries themselves happen later, in the dispatchers, so a slow
// destination never holds a partition. Each step is retried until it
// succeeds or ctx is done.
func (s *Service) handle(ctx context.Context, msgs []kafka.Message) error {
	p := s.plan.Load()
	now := s.opts.Clock()
	byDest := map[string][]newJob{}
	maxAge := map[string]time.Duration{}
	var skipped []actions.Outcome
	var dead []actions.DeadLetter
	var scheduled int
	for i := range msgs {
		m := &msgs[i]
		var a actions.Action
		if err := json.Unmarshal(m.Value, &a); err != nil || a.ActionID == "" || (a.Type != actions.TypeFlow && a.Type != actions.TypeBrief) {
			detail := "not an action record"
			switch {
			case err != nil:
				detail = "not JSON: " + jsonErr(err)
			case a.ActionID == "":
				detail = "no action_id"
			default:
				detail = fmt.Sprintf("unknown action type %q", a.Type)
			}
			dead = append(dead, actions.DeadLetter{Key: m.Key, Value: m.Value, Reason: DLQReasonInvalid, Detail: detail,
				Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time})
			continue
		}
		ds := p.route(&a)
		if len(ds) == 0 {
			skipped = append(skipped, actions.Outcome{ActionID: a.ActionID, RunID: a.RunID, Workspace: a.Workspace,
				AutomationID: a.AutomationID, Type: a.Type, Status: actions.StatusSkipped, Reason: actions.ReasonNoDestination,
				At: now.UTC(), Detail: "no destination takes " + a.Type + " actions of this workspace"})
			continue
		}
		scheduled++
		src := m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10)
		for _, d := range ds {
			byDest[d.Name] = append(byDest[d.Name], newJob{id: a.ActionID, action: string(m.Value), key: string(m.Key), source: src})
			maxAge[d.Name] = d.MaxAge
		}
	}
	if len(byDest) > 0 {
		var res map[string][]byte
		if err := s.step(ctx, "enqueue", func(ctx context.Context) (err error) {
			res, err = s.q.enqueue(ctx, byDest, maxAge, now)
			return err
		}); err != nil {
			return err
		}
		for name, r := range res {
			for _, c := range r {
				if c == enqNew {
					s.poke(name)
					break
				}
			}
		}
	}
	if len(dead) > 0 {
		if err := s.step(ctx, "dead_letter", func(ctx context.Context) error { return s.writer.DeadLetter(ctx, dead) }); err != nil {
			return err
		}
	}
	if len(skipped) > 0 {
		if err := s.step(ctx, "outcomes", func(ctx context.Context) error { return s.writer.WriteOutcomes(ctx, skipped) }); err != nil {
			return err
		}
		for i := range skipped {
			s.m.deliveries.WithLabelValues("", actions.StatusSkipped, actions.ReasonNoDestination).Inc()
			if s.opts.OnOutcome != nil {
				s.opts.OnOutcome(skipped[i])
			}
		}
	}
	s.m.actions.WithLabelValues("scheduled").Add(float64(scheduled))
	s.m.actions.WithLabelValues("no_destination").Add(float64(len(skipped)))
	s.m.actions.WithLabelValues("invalid").Add(float64(len(dead)))
	return nil
}

// jsonErr describes a JSON error without quoting the input.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	}
	return "invalid"
}

// step runs one step of a batch until it succeeds or ctx is done, with
// backoff; while it fails, readiness says so.
func (s *Service) step(ctx context.Context, name string, fn func(context.Context) error) error {
	backoff := 50 * time.Millisecond
	for {
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		err := fn(sctx)
		cancel()
		if err == nil {
			s.setStall(name, nil)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		if name == "enqueue" {
			s.m.redisErrors.WithLabelValues(name).Inc()
		} else {
			s.m.kafkaErrors.WithLabelValues(name).Inc()
		}
		s.setStall(name, err)
		s.log.Warn("scheduling a batch of actions failed; retrying", "step", name, "err", err, "backoff", backoff)
		if !syncx.Sleep(ctx, syncx.Jitter(backoff)) {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
