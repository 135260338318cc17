package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/syncx"
)

// devWatcher reads the output topics of the dev setup, prints each record
// as one readable line, and keeps count of the runs per automation so that
// `whenthen dev --once` knows when the outputs have settled.
type devWatcher struct {
	out *lockedWriter

	mu        sync.Mutex
	completed map[string]int // completed runs per automation id
	runs      map[string]int // runs of any outcome per automation id
	actions   int
	dead      int
	last      time.Time // when the last record arrived
	changed   chan struct{}

	readers []*kafka.Reader
	wg      sync.WaitGroup
}

// lockedWriter serialises the lines of the goroutines that print.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// watchOutputs starts one reader per partition of each output topic, from
// the first offset, and prints what they read until ctx is done or Close is
// called.
func watchOutputs(ctx context.Context, out *lockedWriter, brokers []string, actionsTopic, runsTopic, dlqTopic string) (*devWatcher, error) {
	w := &devWatcher{out: out, completed: map[string]int{}, runs: map[string]int{}, changed: make(chan struct{}, 1)}
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return nil, fmt.Errorf("watch outputs: %w", err)
	}
	defer conn.Close()
	for _, t := range []struct {
		topic  string
		handle func(kafka.Message)
	}{{actionsTopic, w.action}, {runsTopic, w.run}, {dlqTopic, w.deadLetter}} {
		parts, err := conn.ReadPartitions(t.topic)
		if err != nil {
			return nil, fmt.Errorf("watch outputs: partitions of %s: %w", t.topic, err)
		}
		for _, p := range parts {
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers:     brokers,
				Topic:       t.topic,
				Partition:   p.ID,
				StartOffset: kafka.FirstOffset,
				MaxWait:     100 * time.Millisecond, // Close waits for the fetch in flight
			})
			w.readers = append(w.readers, r)
			handle := t.handle
			w.wg.Go(func() {
				for {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						if ctx.Err() != nil || errors.Is(err, io.EOF) {
							return
						}
						// Transient (the broker is going away, a
						// rebalance of leadership): try again shortly.
						if !syncx.Sleep(ctx, 200*time.Millisecond) {
							return
						}
						continue
					}
					handle(m)
				}
			})
		}
	}
	return w, nil
}

// Close stops the readers, waiting at most timeout for them: kafka-go's
// Reader.Close can hang.
func (w *devWatcher) Close(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		for _, r := range w.readers {
			_ = r.Close()
		}
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

func (w *devWatcher) touch(f func()) {
	w.mu.Lock()
	f()
	w.last = time.Now()
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func clock(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.Local().Format("15:04:05")
}

func (w *devWatcher) action(m kafka.Message) {
	var a actions.Action
	if err := json.Unmarshal(m.Value, &a); err != nil {
		w.out.printf("%s ACTION (undecodable, offset %d: %v)\n", clock(m.Time), m.Offset, err)
		return
	}
	w.touch(func() { w.actions++ })
	var b strings.Builder
	fmt.Fprintf(&b, "%s ACTION %-5s %s", clock(a.FiredAt), a.Type, a.AutomationID)
	if a.Object != "" || a.RecordID != "" {
		fmt.Fprintf(&b, " %s/%s", a.Object, a.RecordID)
	}
	switch {
	case a.Brief != nil:
		fmt.Fprintf(&b, " → %s", strings.Join(a.Brief.Recipients, ", "))
	case a.Flow != nil:
		fmt.Fprintf(&b, " → %s enrolls %s", a.Flow.ID, a.Flow.PersonID)
	}
	w.out.printf("%s\n", b.String())
}

func (w *devWatcher) run(m kafka.Message) {
	var r actions.Run
	if err := json.Unmarshal(m.Value, &r); err != nil {
		w.out.printf("%s RUN (undecodable, offset %d: %v)\n", clock(m.Time), m.Offset, err)
		return
	}
	w.touch(func() {
		w.runs[r.AutomationID]++
		if r.Outcome == actions.OutcomeCompleted {
			w.completed[r.AutomationID]++
		}
	})
	outcome := r.Outcome
	if r.Reason != "" {
		outcome += "/" + r.Reason
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s RUN    %s %s %s", clock(r.RanAt), outcome, r.AutomationID, r.EventID)
	if r.Object != "" || r.RecordID != "" {
		fmt.Fprintf(&b, " %s/%s", r.Object, r.RecordID)
	}
	var notes []string
	if r.Outcome == actions.OutcomeCompleted {
		notes = append(notes, plural(len(r.ActionIDs), "action"))
	}
	if r.LateMS > 0 {
		what := "timer"
		if r.Context != nil && r.Context.Schedule != nil {
			what = "tick"
		}
		notes = append(notes, what+" "+(time.Duration(r.LateMS)*time.Millisecond).Round(time.Second).String()+" late")
	}
	if r.Error != "" {
		notes = append(notes, r.Error)
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, "; "))
	}
	w.out.printf("%s\n", b.String())
}

func (w *devWatcher) deadLetter(m kafka.Message) {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	w.touch(func() { w.dead++ })
	w.out.printf("%s DLQ    %s %s offset %s: %s\n", clock(m.Time), h[actions.HeaderDLQReason],
		h[actions.HeaderSourceTopic], h[actions.HeaderSourceOffset], h[actions.HeaderDLQDetail])
}

// missing returns those of ids without a completed run.
func (w *devWatcher) missing(ids []string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var miss []string
	for _, id := range ids {
		if w.completed[id] == 0 {
			miss = append(miss, id)
		}
	}
	return miss
}

// settle waits until every one of ids has a completed run and no record
// has arrived for quiet, or until timeout; it returns the ids still
// without a completed run.
func (w *devWatcher) settle(ctx context.Context, ids []string, quiet, timeout time.Duration) []string {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(quiet / 4)
	defer tick.Stop()
	for {
		miss := w.missing(ids)
		w.mu.Lock()
		idle := time.Since(w.last)
		w.mu.Unlock()
		if len(miss) == 0 && idle >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return miss
		case <-deadline.C:
			return miss
		case <-w.changed:
		case <-tick.C:
		}
	}
}

// summary is one line counting what was seen.
func (w *devWatcher) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.runs {
		n += c
	}
	return fmt.Sprintf("%s, %s, %s, %s with a completed run",
		plural(n, "run"), plural(w.actions, "action"), plural(w.dead, "dead letter"), plural(len(w.completed), "automation"))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
