package service

import (
	"context"
	"time"
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

// fireDue fires the timers and schedule ticks due now, in rounds of at
// most TimerBatch through the pipeline (Pipeline.FireDue: fire, publish,
// commit, the last two retried). A round that fails ends the tick: the
// next tick tries again. Rounds go on while they find work, so a backlog
// drains faster than TimerBatch per tick, and a schedule's tick over a
// million records walks TimerBatch records a round until it is done (the
// partitions' event processing goes on meanwhile: this loop is its own
// goroutine).
func (s *Service) fireDue(ctx context.Context) {
	for range maxTimerRounds {
		if ctx.Err() != nil {
			return
		}
		work, err := s.pipeline.FireDue(ctx, s.opts.Clock(), s.opts.TimerBatch)
		if err != nil || work == 0 {
			return
		}
	}
}
