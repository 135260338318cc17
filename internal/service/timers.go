package service

import (
	"context"
	"time"

	"github.com/whenthen/whenthen/pipeline"
)

// Bounds of the timer loop's retry backoff.
const (
	timerBackoffMin = 100 * time.Millisecond
	timerBackoffMax = 5 * time.Second
)

// timerLoop fires due date timers every TimerInterval until ctx is done;
// work bounds a round in flight (it outlives ctx until the drain deadline).
func (s *Service) timerLoop(ctx, work context.Context) {
	t := time.NewTicker(s.opts.TimerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.fireDue(work)
	}
}

// maxTimerRounds caps the FireDue calls of one tick.
const maxTimerRounds = 100

// fireDue fires the timers due now: FireDue, then Publish of its outputs,
// then Commit (which acknowledges the timers), the last two retried until
// they succeed or ctx is done. A FireDue that fails is tried again at the
// next tick. Rounds go on while they produce runs, so a backlog drains
// faster than TimerBatch per tick; a round whose timers all dropped (their
// record moved its date) ends the tick early, and the next tick goes on.
// Timers whose round is abandoned (ctx done) stay leased in Redis and
// fire again once the lease expires: at least once, deduplicated by their
// deterministic event ids.
func (s *Service) fireDue(ctx context.Context) {
	for range maxTimerRounds {
		if ctx.Err() != nil {
			return
		}
		out, err := s.engine.FireDue(ctx, s.opts.Clock(), s.opts.TimerBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.m.timerErrors.WithLabelValues("fire").Inc()
				s.log.Warn("firing due timers failed; trying again at the next tick", "err", err)
			}
			return
		}
		publish := func(ctx context.Context) error {
			// The writer retries until its context is done: bound each
			// attempt so that a failing Kafka is counted and logged here.
			ctx, cancel := context.WithTimeout(ctx, pipeline.DefaultPublishTimeout)
			defer cancel()
			return s.writer.Publish(ctx, out.Actions, out.Runs)
		}
		if !s.retry(ctx, "publish", publish) {
			return
		}
		if !s.retry(ctx, "commit", func(ctx context.Context) error { return s.engine.Commit(ctx, out) }) {
			return
		}
		if len(out.Runs) == 0 {
			return
		}
		s.log.Info("date timers fired", "runs", len(out.Runs), "actions", len(out.Actions))
		for i := range out.Actions {
			a := &out.Actions[i]
			s.log.Debug("action", "action_id", a.ActionID, "automation", a.AutomationID, "event", a.EventID, "record", a.RecordID)
		}
	}
}

// retry runs fn until it succeeds (true) or ctx is done (false).
func (s *Service) retry(ctx context.Context, stage string, fn func(context.Context) error) bool {
	backoff := timerBackoffMin
	for {
		err := fn(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			s.log.Warn("timer round abandoned at shutdown; its timers fire again after their lease", "stage", stage, "err", err)
			return false
		}
		s.m.timerErrors.WithLabelValues(stage).Inc()
		s.log.Warn("timer round step failed; retrying", "stage", stage, "backoff", backoff, "err", err)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, timerBackoffMax)
	}
}
