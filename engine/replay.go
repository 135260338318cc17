package engine

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Replay runs events through an engine in simulated time, as `whenthen
// eval` and `whenthen test` do: time follows the events. Before an event
// is processed every timer due at or before its time fires; `now` is the
// time of the event or timer being processed. Each step is committed at
// once, as if Kafka acknowledged its outputs.
type Replay struct {
	e   *Engine
	mu  sync.Mutex
	now time.Time
}

// NewReplay builds an engine whose clock is the replay's. opts.Clock and
// opts.SimulatedTime are set by the replay.
func NewReplay(opts Options) (*Replay, error) {
	r := &Replay{}
	opts.Clock = r.clock
	opts.SimulatedTime = true
	e, err := New(opts)
	if err != nil {
		return nil, err
	}
	r.e = e
	return r, nil
}

// Engine is the replay's engine.
func (r *Replay) Engine() *Engine { return r.e }

func (r *Replay) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *Replay) set(t time.Time) {
	r.mu.Lock()
	r.now = t
	r.mu.Unlock()
}

// Event fires the timers due by the event's time, then processes the
// event. It returns the outputs in order: timer firings first.
func (r *Replay) Event(ctx context.Context, ev *Event) ([]*Output, error) {
	if ev.Time.IsZero() {
		return nil, errors.New("replay: event has no time")
	}
	outs, err := r.Until(ctx, ev.Time)
	if err != nil {
		return outs, err
	}
	r.set(ev.Time)
	out, err := r.e.Process(ctx, []*Event{ev}, "")
	if err != nil {
		return outs, err
	}
	if err := r.e.Commit(ctx, out); err != nil {
		return outs, err
	}
	return append(outs, out), nil
}

// Until fires the timers and schedule ticks due at or before t, earliest
// first.
func (r *Replay) Until(ctx context.Context, t time.Time) ([]*Output, error) {
	var outs []*Output
	for {
		r.set(t)
		out, err := r.e.FireDue(ctx, t, 100)
		if err != nil {
			return outs, err
		}
		work := out.Work()
		if err := r.e.Commit(ctx, out); err != nil {
			return outs, err
		}
		if len(out.Runs) > 0 {
			outs = append(outs, out)
		}
		if work == 0 {
			return outs, nil
		}
	}
}
