package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/syncx"
)

// Bounds of a dispatcher's batches.
const (
	maxClaim  = 256 // jobs claimed at once
	maxSettle = 512 // finished jobs settled at once
)

// DLQReasonFailed is the dead-letter reason of an action that failed at a
// destination (whenthen-dlq-reason).
const DLQReasonFailed = "delivery_failed"

// dispatcher delivers the jobs of one destination: a claim loop takes due
// jobs from the destination's Redis queue while it has room (at most twice
// the concurrency in hand), Concurrency workers make the attempts, and a
// settler writes what they came to, in batches: final marks and retries
// to Redis, then outcomes and dead letters to Kafka, then the finished
// jobs removed. Nothing of one destination waits for another's: each has
// its own queue, claims, workers and settler, and a job waiting for a
// retry is in Redis, not in memory.
type dispatcher struct {
	s    *Service
	name string
	d    atomic.Pointer[dest] // swapped by reloads that keep the concurrency
	log  *slog.Logger
	m    *destMetrics

	// limit bounds the jobs claimed and not yet attempted (queued for a
	// worker, or being attempted): twice the concurrency, so that a job
	// waits at most about two attempts for a worker, well within its
	// lease. Attempted jobs wait for the settler in done, which holds
	// many batches: settling (Redis and Kafka round trips) overlaps the
	// next attempts.
	limit  int
	jobs   chan *work
	done   chan *work
	wake   chan struct{}
	inHand atomic.Int64

	stopping chan struct{}
	stopOnce sync.Once
	stopped  chan struct{} // closed when every loop has returned

	mu       sync.Mutex
	stallErr error // the settle step being retried, for readiness
}

// work is one claimed job and what its attempt came to.
type work struct {
	claimed
	token string
	// leaseEnd is when the claim ends: an attempt must finish before it,
	// or another claim may send the same action.
	leaseEnd time.Time
	act      actions.Action
	bad      error // the stored action does not decode
	log      []actions.Attempt

	// snaps are the record snapshots read for the claim's batch at once
	// (nil: none read).
	snaps map[store.RecordRef]*store.Snapshot

	outcome *actions.Outcome // final
	mark    string           // the final mark to write ("" when it exists)
	retry   *retry
	dead    *actions.DeadLetter
}

func newDispatcher(s *Service, d *dest) *dispatcher {
	limit := 2 * d.Concurrency
	dp := &dispatcher{s: s, name: d.Name, log: s.log.With("destination", d.Name), m: s.m.forDest(d.Name),
		limit: limit, jobs: make(chan *work, limit), done: make(chan *work, 4*maxSettle), wake: make(chan struct{}, 1),
		stopping: make(chan struct{}), stopped: make(chan struct{})}
	dp.d.Store(d)
	return dp
}

// start runs the loops: claims until stop, workers and settler until
// the claims in hand are settled. ctx bounds the work in flight (it is
// cancelled at the drain deadline).
func (dp *dispatcher) start(ctx context.Context) {
	var workers sync.WaitGroup
	var all sync.WaitGroup
	all.Go(func() { dp.claimLoop(ctx) })
	for range dp.d.Load().Concurrency {
		workers.Go(func() { dp.worker(ctx) })
	}
	all.Go(func() {
		workers.Wait()
		close(dp.done)
	})
	all.Go(func() { dp.settler(ctx) })
	go func() {
		all.Wait()
		close(dp.stopped)
	}()
}

// stop ends the claims; the jobs in hand are finished (those not started
// are put back, due at once) and settled before stopped closes.
func (dp *dispatcher) stop() { dp.stopOnce.Do(func() { close(dp.stopping) }) }

// poke wakes the claim loop (new jobs were scheduled, or room was made).
func (dp *dispatcher) poke() {
	select {
	case dp.wake <- struct{}{}:
	default:
	}
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (dp *dispatcher) claimLoop(ctx context.Context) {
	defer close(dp.jobs)
	t := time.NewTicker(dp.s.opts.PollInterval)
	defer t.Stop()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-dp.stopping:
			return
		default:
		}
		free := dp.limit - int(dp.inHand.Load())
		if free > 0 {
			d := dp.d.Load()
			now := dp.s.opts.Clock()
			want := min(free, maxClaim)
			token := newToken()
			got, err := dp.s.q.claim(ctx, dp.name, now, now.Add(d.lease), want, token)
			if err != nil {
				dp.s.m.redisErrors.WithLabelValues("claim").Inc()
				dp.log.Warn("claiming due deliveries failed; trying again", "err", err, "backoff", backoff)
				if !dp.sleep(syncx.Jitter(backoff)) {
					return
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			works := make([]*work, 0, len(got))
			for _, c := range got {
				w := &work{claimed: c, token: token, leaseEnd: now.Add(d.lease)}
				if w.bad = json.Unmarshal([]byte(c.action), &w.act); w.bad == nil && w.act.ActionID != c.id {
					w.bad = fmt.Errorf("the stored action is %q, not %q", w.act.ActionID, c.id)
				}
				if c.log != "" {
					_ = json.Unmarshal([]byte(c.log), &w.log)
				}
				works = append(works, w)
			}
			dp.prefetch(ctx, works)
			for _, w := range works {
				dp.inHand.Add(1)
				dp.m.inflight.Inc()
				dp.jobs <- w // never blocks: at most limit in hand
			}
			if len(got) == want {
				continue
			}
		}
		select {
		case <-dp.stopping:
			return
		case <-dp.wake:
		case <-t.C:
		}
	}
}

// prefetch reads, in one round trip, the record snapshots that the
// batch's first attempts (no content built yet) will need, instead of
// one round trip per attempt. A failure leaves them to the attempts.
func (dp *dispatcher) prefetch(ctx context.Context, works []*work) {
	var refs []store.RecordRef
	for _, w := range works {
		if w.content == "" && w.bad == nil && w.final == "" {
			refs = append(refs, snapshotRefs(&w.act)...)
		}
	}
	if len(refs) == 0 || dp.s.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	snaps, err := dp.s.store.LoadSnapshots(ctx, refs)
	if err != nil {
		return
	}
	m := make(map[store.RecordRef]*store.Snapshot, len(refs))
	for i, r := range refs {
		m[r] = snaps[i]
	}
	for _, w := range works {
		w.snaps = m
	}
}

// sleep waits d or until stop; it reports whether d passed.
func (dp *dispatcher) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-dp.stopping:
		return false
	}
}

func (dp *dispatcher) worker(ctx context.Context) {
	for w := range dp.jobs {
		now := dp.s.opts.Clock()
		d := dp.d.Load()
		stopping := false
		select {
		case <-dp.stopping:
			stopping = true
		default:
		}
		if stopping || now.Add(d.Timeout+dp.s.plan.Load().aiTimeout+10*time.Second).After(w.leaseEnd) {
			// Not started, and stopping, or its claim too near its end
			// for a whole attempt (the settler was held up): back in the
			// queue, due at once, for whoever claims it next.
			w.retry = &retry{id: w.id, token: w.token, next: now, first: w.first, attempts: w.attempts, log: w.claimed.log}
		} else {
			dp.attempt(ctx, w)
		}
		dp.inHand.Add(-1)
		dp.poke()
		dp.done <- w
	}
}

// attempt makes one attempt of w (unless it is final already, or out of
// time) and decides what follows: final, or a retry.
func (dp *dispatcher) attempt(ctx context.Context, w *work) {
	d := dp.d.Load()
	now := dp.s.opts.Clock()
	if w.final != "" {
		// Final before a crash or a lost lease, its outcome perhaps not
		// written: write it again, from the mark.
		w.outcome = dp.fromMark(w, now)
		return
	}
	if w.bad != nil {
		dp.finish(w, now, actions.StatusFailed, ReasonInvalid, "", 0, fmt.Sprintf("the stored action cannot be read: %v", w.bad), d)
		return
	}
	deadline := w.enqueued.Add(d.MaxAge)
	if !now.Before(deadline) {
		// Claimed past its max_age (its retry was due just before it, or
		// no instance ran for a while): failed with its last attempt's
		// error.
		errText, status := "", 0
		if n := len(w.log); n > 0 {
			errText, status = w.log[n-1].Error, w.log[n-1].HTTPStatus
		}
		dp.finish(w, now, actions.StatusFailed, ReasonExpired, errText, status,
			fmt.Sprintf("not delivered within max_age %v (%d attempt(s))", d.MaxAge, w.attempts), d)
		return
	}
	a := &attempt{act: &w.act, raw: w.action, dest: d, plan: dp.s.plan.Load(), content: w.content,
		n: w.attempts + 1, now: now, st: dp.s.store, schema: dp.s.schema, pre: w.snaps}
	res := d.send.deliver(ctx, a)
	end := dp.s.opts.Clock()
	if res.tried {
		w.attempts++
		if w.first.IsZero() {
			w.first = now
		}
		at := actions.Attempt{At: now, DurationMS: end.Sub(now).Milliseconds(), HTTPStatus: res.httpStatus}
		if res.err != nil {
			at.Error = res.err.Error()
		}
		w.log = append(w.log, at)
		if len(w.log) > actions.MaxAttemptLog {
			w.log = w.log[len(w.log)-actions.MaxAttemptLog:]
		}
		dp.m.attemptDuration.Observe(end.Sub(now).Seconds())
		switch {
		case res.err == nil:
			dp.m.attempts.WithLabelValues("ok").Inc()
		case res.retryable:
			dp.m.attempts.WithLabelValues("retryable_error").Inc()
		default:
			dp.m.attempts.WithLabelValues("permanent_error").Inc()
		}
	}
	if res.content != "" {
		w.content = res.content
	}
	errText := ""
	if res.err != nil {
		errText = res.err.Error()
	}
	switch {
	case res.status != "":
		dp.finish(w, end, res.status, res.reason, errText, res.httpStatus, res.detail, d)
	case res.retryable:
		next := end.Add(backoff(max(w.attempts, 1), d.Retry))
		if ra := end.Add(res.retryAfter); ra.After(next) {
			next = ra
		}
		if !next.Before(deadline) {
			dp.finish(w, end, actions.StatusFailed, ReasonExpired, errText, res.httpStatus,
				fmt.Sprintf("gave up after %d attempt(s): the next would be past max_age %v", w.attempts, d.MaxAge), d)
			return
		}
		logJSON, _ := json.Marshal(w.log)
		w.retry = &retry{id: w.id, token: w.token, next: next, first: w.first, attempts: w.attempts, log: string(logJSON), newContent: res.content}
		dp.m.retries.Inc()
	default:
		dp.finish(w, end, actions.StatusFailed, ReasonRejected, errText, res.httpStatus, res.detail, d)
	}
}

// backoff is the wait before attempt n+1: Initial doubled n-1 times, at
// most Max, drawn from [d/2, d].
func backoff(n int, r RetryConfig) time.Duration {
	d := r.Initial
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	return syncx.Jitter(min(d, r.Max))
}

// finish makes w final: its outcome, its mark and, when it failed, its
// dead letter.
func (dp *dispatcher) finish(w *work, at time.Time, status, reason, errText string, httpStatus int, detail string, d *dest) {
	o := &actions.Outcome{ActionID: w.id, RunID: w.act.RunID, Workspace: w.act.Workspace, AutomationID: w.act.AutomationID,
		Type: w.act.Type, Destination: dp.name, Status: status, Reason: reason, Attempts: w.attempts, Error: errText,
		HTTPStatus: httpStatus, At: at.UTC(), Detail: detail, AttemptLog: w.log}
	if !w.first.IsZero() {
		o.DurationMS = at.Sub(w.first).Milliseconds()
	}
	w.outcome = o
	w.mark = strings.Join([]string{status, reason, strconv.Itoa(o.Attempts), strconv.Itoa(httpStatus),
		itoa(o.DurationMS), itoa(ms(at))}, "|")
	if status == actions.StatusFailed {
		dl := &actions.DeadLetter{Key: []byte(w.key), Value: []byte(w.action), Reason: DLQReasonFailed, Time: w.enqueued}
		dl.Detail = fmt.Sprintf("destination %s: %s after %d attempt(s)", dp.name, reason, w.attempts)
		if errText != "" {
			dl.Detail += ": " + errText
		}
		if detail != "" {
			dl.Detail += " (" + detail + ")"
		}
		dl.Topic, dl.Partition, dl.Offset = parseSource(w.source)
		w.dead = dl
	}
}

// fromMark rebuilds a final outcome from its mark (STATUS|REASON|
// ATTEMPTS|HTTP|DURATION_MS|AT_MS) and the job's attempt log.
func (dp *dispatcher) fromMark(w *work, now time.Time) *actions.Outcome {
	o := &actions.Outcome{ActionID: w.id, RunID: w.act.RunID, Workspace: w.act.Workspace, AutomationID: w.act.AutomationID,
		Type: w.act.Type, Destination: dp.name, At: now.UTC(), AttemptLog: w.log,
		Detail: "outcome written again from its final mark (the process that reached it stopped before finishing the job)"}
	p := strings.Split(w.final, "|")
	if len(p) != 6 {
		o.Status, o.Reason = actions.StatusSkipped, actions.ReasonAlreadyDelivered
		return o
	}
	o.Status, o.Reason = p[0], p[1]
	o.Attempts, _ = strconv.Atoi(p[2])
	o.HTTPStatus, _ = strconv.Atoi(p[3])
	o.DurationMS, _ = strconv.ParseInt(p[4], 10, 64)
	if at, err := strconv.ParseInt(p[5], 10, 64); err == nil {
		o.At = fromMS(at)
	}
	if n := len(w.log); n > 0 {
		o.Error = w.log[n-1].Error
	}
	return o
}

// parseSource reads a job's source, TOPIC/PARTITION/OFFSET.
func parseSource(s string) (topic string, partition int, offset int64) {
	i := strings.LastIndexByte(s, '/')
	j := strings.LastIndexByte(s[:max(i, 0)], '/')
	if i < 0 || j < 0 {
		return s, 0, 0
	}
	partition, _ = strconv.Atoi(s[j+1 : i])
	offset, _ = strconv.ParseInt(s[i+1:], 10, 64)
	return s[:j], partition, offset
}

func (dp *dispatcher) settler(ctx context.Context) {
	batch := make([]*work, 0, maxSettle)
	for w := range dp.done {
		batch = append(batch[:0], w)
	drain:
		for len(batch) < maxSettle {
			select {
			case w, ok := <-dp.done:
				if !ok {
					break drain
				}
				batch = append(batch, w)
			default:
				break drain
			}
		}
		dp.settle(ctx, batch)
		dp.m.inflight.Sub(float64(len(batch)))
	}
}

// settle writes what a batch came to: final marks and retries (Redis),
// outcomes and dead letters (Kafka), then removes the finished jobs
// (Redis). Each step is retried until it succeeds or ctx is done; a job
// not settled then is claimed again when its lease ends.
func (dp *dispatcher) settle(ctx context.Context, batch []*work) {
	var marks []finalMark
	var retries []retry
	var outs []actions.Outcome
	var dead []actions.DeadLetter
	var ids, tokens []string
	for _, w := range batch {
		switch {
		case w.retry != nil:
			retries = append(retries, *w.retry)
		case w.outcome != nil:
			if w.mark != "" {
				marks = append(marks, finalMark{id: w.id, value: w.mark})
			}
			outs = append(outs, *w.outcome)
			if w.dead != nil {
				dead = append(dead, *w.dead)
			}
			ids, tokens = append(ids, w.id), append(tokens, w.token)
		}
	}
	if !dp.retry(ctx, "settle", func(ctx context.Context) error {
		return dp.s.q.settle(ctx, dp.name, marks, retries, dp.s.opts.DedupTTL)
	}) {
		return
	}
	if len(dead) > 0 && !dp.retry(ctx, "dead_letter", func(ctx context.Context) error { return dp.s.writer.DeadLetter(ctx, dead) }) {
		return
	}
	if len(outs) > 0 && !dp.retry(ctx, "outcomes", func(ctx context.Context) error { return dp.s.writer.WriteOutcomes(ctx, outs) }) {
		return
	}
	if !dp.retry(ctx, "finish", func(ctx context.Context) error { return dp.s.q.finish(ctx, dp.name, ids, tokens) }) {
		return
	}
	for i := range outs {
		dp.s.m.deliveries.WithLabelValues(dp.name, outs[i].Status, outs[i].Reason).Inc()
	}
	for _, w := range batch {
		if w.outcome != nil && w.mark != "" && !w.act.FiredAt.IsZero() {
			dp.m.latency.Observe(w.outcome.At.Sub(w.act.FiredAt).Seconds())
		}
		if w.outcome != nil && dp.s.opts.OnOutcome != nil {
			dp.s.opts.OnOutcome(*w.outcome)
		}
	}
}

// stepTimeout bounds one try of a settle step.
const stepTimeout = 15 * time.Second

// retry runs step until it succeeds or ctx is done (reported false),
// with backoff; while it fails, readiness says so.
func (dp *dispatcher) retry(ctx context.Context, name string, step func(context.Context) error) bool {
	backoff := 50 * time.Millisecond
	for {
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		err := step(sctx)
		cancel()
		if err == nil {
			dp.setStall(nil)
			return true
		}
		if ctx.Err() != nil {
			dp.log.Warn("settling deliveries abandoned at shutdown; their jobs are claimed again after the lease", "step", name, "err", err)
			return false
		}
		if name == "outcomes" || name == "dead_letter" {
			dp.s.m.kafkaErrors.WithLabelValues(name).Inc()
		} else {
			dp.s.m.redisErrors.WithLabelValues(name).Inc()
		}
		dp.setStall(fmt.Errorf("destination %s: %s: %w", dp.name, name, err))
		dp.log.Warn("settling deliveries failed; retrying", "step", name, "err", err, "backoff", backoff)
		if !syncx.Sleep(ctx, syncx.Jitter(backoff)) {
			return false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (dp *dispatcher) setStall(err error) {
	dp.mu.Lock()
	dp.stallErr = err
	dp.mu.Unlock()
}

// Err is the settle step being retried, nil when none.
func (dp *dispatcher) Err() error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return dp.stallErr
}
