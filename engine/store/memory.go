package store

import (
	"container/heap"
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Memory keeps the engine's state in process, for the offline tools
// (`whenthen eval`, `test`, `explain`, `backtest`). It decides as Redis
// does, on the same `now` and in the same milliseconds: pending claims
// with a lease and takeover after it, a token that recognises its own
// claim, done marks, enrollments and cooldowns with their windows, and a
// due-timer queue ordered as the Redis sorted set (by due time, then by
// the timer's Redis key) with leases and acknowledgements. Snapshots are
// kept in their stored form and decoded as Redis's are (once per saved
// version), so that a record reads back exactly as it does from Redis.
//
// Nothing expires: the TTLs of Redis only collect garbage, and an offline
// run is bounded by its input. Memory is safe for concurrent use; "nothing
// due" costs O(1) and a claimed timer O(log n).
type Memory struct {
	lease int64 // ms
	codec snapshotCodec

	mu        sync.Mutex
	actions   map[ActionRef]memAction
	enrolls   map[EnrollmentRef]memWindow
	cooldowns map[CooldownRef]memWindow
	records   map[RecordRef]*memSnapshot
	timers    map[TimerRef]*memTimer
	queue     timerQueue
	known     map[knownKey]*memKnown
	walks     map[WalkRef]*memWalk
}

// knownKey names the known records of a workspace's object.
type knownKey struct{ workspace, object string }

// memKnown is a set of known record ids, listed in id order for walks:
// sorted is rebuilt when the set changed since it was last listed.
type memKnown struct {
	ids    map[string]struct{}
	sorted []string
	dirty  bool
}

// memWalk is a walk's state (walk.go).
type memWalk struct {
	mark, target, cursor string
	hasMark, hasTarget   bool
	leaseToken           string
	leaseUntil           int64
}

// memAction is a claim: pending (token, lease) or done.
type memAction struct {
	pending    bool
	token      string
	leaseUntil int64
}

// memWindow is an enrollment (by action id, until 0: forever) or a
// cooldown (by event id).
type memWindow struct {
	owner string
	until int64
}

// memSnapshot is a snapshot in its stored form, and its decoding once
// read.
type memSnapshot struct {
	data []byte
	dec  atomic.Pointer[Snapshot]
}

// memTimer is a timer's value and its place in the queue.
type memTimer struct {
	ref         TimerRef
	member      string // its Redis key without prefix: orders equal dues
	date, fired int64
	seen        int64
	sig         string
	score       int64
	index       int // in the queue; -1 when not queued
}

// NewMemory returns an empty in-memory store.
func NewMemory(opts Options) (*Memory, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Memory{
		lease: o.TTLs.Lease.Milliseconds(), codec: newSnapshotCodec(o),
		actions: map[ActionRef]memAction{}, enrolls: map[EnrollmentRef]memWindow{},
		cooldowns: map[CooldownRef]memWindow{}, records: map[RecordRef]*memSnapshot{},
		timers: map[TimerRef]*memTimer{}, known: map[knownKey]*memKnown{}, walks: map[WalkRef]*memWalk{},
	}, nil
}

// Claim decides each claim as Redis's claim script does and sets its
// results.
func (m *Memory) Claim(ctx context.Context, claims []*Claim, token string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := ms(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range claims {
		m.claim(c, token, n)
	}
	return nil
}

func (m *Memory) claim(c *Claim, token string, now int64) {
	c.Busy, c.Cooldown = false, false
	var cool int64
	if !c.CooldownUntil.IsZero() {
		cool = ms(c.CooldownUntil)
	}
	cref := CooldownRef{c.Workspace, c.AutomationID, c.RecordID}
	if cool > 0 {
		if w, ok := m.cooldowns[cref]; ok && w.owner != c.EventID && w.until > now {
			c.Cooldown = true
			return
		}
	}
	var buf [8]Status
	res := buf[:0]
	for _, t := range c.Targets {
		var st Status
		switch a, ok := m.actions[ActionRef{c.Workspace, t.ActionID}]; {
		case !ok:
			st = StatusNew
		case !a.pending:
			st = StatusDone
		case a.token == token:
			st = StatusOurs
		case a.leaseUntil <= now:
			st = StatusNew
		default:
			c.Busy = true
			return
		}
		if st != StatusDone && t.Flow != "" {
			w, ok := m.enrolls[EnrollmentRef{c.Workspace, t.Flow, t.Person}]
			if ok && w.owner != t.ActionID && (w.until == 0 || w.until > now) {
				st = StatusEnrolled
			}
		}
		res = append(res, st)
	}
	emitted := 0
	for i, st := range res {
		t := &c.Targets[i]
		t.Status = st
		if st != StatusNew && st != StatusOurs {
			continue
		}
		emitted++
		m.actions[ActionRef{c.Workspace, t.ActionID}] = memAction{pending: true, token: token, leaseUntil: luaNumber(now + m.lease)}
		if t.Flow != "" {
			var until int64
			if !t.EnrollUntil.IsZero() {
				until = luaNumber(ms(t.EnrollUntil))
			}
			m.enrolls[EnrollmentRef{c.Workspace, t.Flow, t.Person}] = memWindow{owner: t.ActionID, until: until}
		}
	}
	if emitted > 0 && cool > 0 {
		m.cooldowns[cref] = memWindow{owner: c.EventID, until: luaNumber(cool)}
	}
}

// luaNumber is v as Redis's Lua scripts store a number they write into a
// string: Lua 5.1 numbers are doubles, written with "%.14g", which is
// exact below 10^14 ms (the year 5138) and rounds to 14 digits beyond.
func luaNumber(v int64) int64 {
	if v > -1e14 && v < 1e14 {
		return v
	}
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', 14, 64), 64)
	return int64(f)
}

// Confirm marks produced actions done: those claimed with token, and those
// whose claim is gone.
func (m *Memory) Confirm(ctx context.Context, actions []ActionRef, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range actions {
		if a, ok := m.actions[r]; !ok || (a.pending && a.token == token) {
			m.actions[r] = memAction{}
		}
	}
	return nil
}

// LoadSnapshots returns the snapshots of refs: nil where a record has
// none, or one the schema cannot read (logged).
func (m *Memory) LoadSnapshots(ctx context.Context, refs []RecordRef) ([]*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, nil
	}
	found := make([]*memSnapshot, len(refs))
	m.mu.Lock()
	for i, r := range refs {
		found[i] = m.records[r]
	}
	m.mu.Unlock()
	out := make([]*Snapshot, len(refs))
	for i, sn := range found {
		if sn == nil {
			continue
		}
		if out[i] = sn.dec.Load(); out[i] == nil {
			if out[i] = m.codec.decode(refs[i], sn.data); out[i] != nil {
				sn.dec.Store(out[i])
			}
		}
	}
	return out, nil
}

// Apply writes a batch's snapshots and timers, in the order of Writes.
func (m *Memory) Apply(ctx context.Context, w *Writes, _ time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.Empty() {
		return nil
	}
	// Encoded outside the lock; each snapshot keeps a copy of its own.
	saves := make([]*memSnapshot, len(w.Saves))
	if len(w.Saves) > 0 {
		buf := getSnapshotBuf()
		for i := range w.Saves {
			var ok bool
			if *buf, ok = m.codec.encode((*buf)[:0], &w.Saves[i]); ok {
				saves[i] = &memSnapshot{data: slices.Clone(*buf)}
			}
		}
		putSnapshotBuf(buf)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Deletes before saves and cancels before arms (Writes).
	for _, d := range w.Deletes {
		delete(m.records, d)
		m.forget(d)
	}
	for _, f := range w.Forget {
		m.forget(f)
	}
	for i, sv := range w.Saves {
		if saves[i] != nil {
			m.records[sv.Ref] = saves[i]
			m.learn(sv.Ref)
		}
	}
	for _, a := range w.Advances {
		m.advance(a)
	}
	for _, c := range w.Cancels {
		if t := m.timers[c]; t != nil {
			m.queue.remove(t)
			delete(m.timers, c)
		}
	}
	for _, a := range w.Arms {
		m.arm(&a)
	}
	return nil
}

// arm sets a timer unless it is already armed for the same date.
func (m *Memory) arm(a *Arm) {
	date := ms(a.Date)
	t := m.timers[a.TimerRef]
	if t != nil && (!a.Force && t.date == date || a.Force && a.Sig != "" && t.sig == a.Sig) {
		return
	}
	if t == nil {
		t = &memTimer{ref: a.TimerRef, member: keys{}.timer(a.TimerRef), index: -1}
		m.timers[a.TimerRef] = t
	}
	t.date, t.fired, t.seen, t.sig = date, ms(a.Fired), msOrZero(a.Seen), a.Sig
	next := int64(-1)
	if !a.Next.IsZero() {
		next = ms(a.Next)
	}
	if next >= 0 {
		m.queue.set(t, next)
	} else {
		m.queue.remove(t)
	}
}

// ClaimDue leases up to limit timers due at or before upTo, earliest
// first, until now + the lease.
func (m *Memory) ClaimDue(ctx context.Context, upTo, now time.Time, limit int) ([]DueTimer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hi, leased := ms(upTo), ms(now)+m.lease
	m.mu.Lock()
	defer m.mu.Unlock()
	var taken []*memTimer
	for (limit < 0 || len(taken) < limit) && len(m.queue) > 0 && m.queue[0].score <= hi {
		taken = append(taken, heap.Pop(&m.queue).(*memTimer))
	}
	out := make([]DueTimer, len(taken))
	for i, t := range taken {
		out[i] = m.due(t)
		out[i].leased = leased
	}
	// Leased once all are taken, as the script does: a lease due by upTo
	// is not taken again in the same call.
	for _, t := range taken {
		m.queue.set(t, leased)
	}
	return out, nil
}

func (m *Memory) due(t *memTimer) DueTimer {
	return DueTimer{TimerRef: t.ref, member: t.member, Date: fromMS(t.date), Fired: fromMS(t.fired), Seen: fromMSOrZero(t.seen), Sig: t.sig, Score: fromMS(t.score)}
}

// PeekDue lists the timers due at or before upTo, earliest first, as
// ClaimDue would lease them, without leasing them.
func (m *Memory) PeekDue(ctx context.Context, upTo time.Time) ([]DueTimer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hi := ms(upTo)
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []*memTimer
	// The heap's entries due by hi: the subtrees under a later entry hold
	// none.
	var walk func(i int)
	walk = func(i int) {
		if i >= len(m.queue) || m.queue[i].score > hi {
			return
		}
		due = append(due, m.queue[i])
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
	slices.SortFunc(due, compareTimers)
	out := make([]DueTimer, len(due))
	for i, t := range due {
		out[i] = m.due(t)
	}
	return out, nil
}

// AckTimers settles fired timers still holding their lease.
func (m *Memory) AckTimers(ctx context.Context, due []DueTimer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range due {
		t := m.timers[d.TimerRef]
		if t == nil || t.index < 0 || t.score != d.leased {
			continue // re-armed, fired by another claim, or cancelled
		}
		t.date, t.fired, t.seen, t.sig = ms(d.Date), ms(d.NewFired), msOrZero(d.Seen), d.Sig
		next := int64(-1)
		if !d.Next.IsZero() {
			next = ms(d.Next)
		}
		if next >= 0 {
			m.queue.set(t, next)
		} else {
			m.queue.remove(t)
		}
	}
	return nil
}

// Export reads the settled state of sel, as Redis.Export does.
func (m *Memory) Export(ctx context.Context, sel Selection) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &State{}
	for _, r := range sel.Records {
		if sn := m.records[r]; sn != nil {
			st.Snapshots = append(st.Snapshots, StoredSnapshot{Ref: r, Data: slices.Clone(sn.data)})
		}
	}
	for _, c := range sel.Cooldowns {
		if w, ok := m.cooldowns[c]; ok {
			st.Cooldowns = append(st.Cooldowns, Cooldown{CooldownRef: c, EventID: w.owner, Until: fromMS(w.until)})
		}
	}
	for _, a := range sel.Actions {
		if v, ok := m.actions[a]; ok && !v.pending {
			st.Done = append(st.Done, a)
		}
	}
	for _, e := range sel.Enrollments {
		if w, ok := m.enrolls[e]; ok {
			en := Enrollment{EnrollmentRef: e, ActionID: w.owner}
			if w.until != 0 {
				en.Until = fromMS(w.until)
			}
			st.Enrollments = append(st.Enrollments, en)
		}
	}
	return st, nil
}

// Import writes exported state.
func (m *Memory) Import(ctx context.Context, st *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if st == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sn := range st.Snapshots {
		m.records[sn.Ref] = &memSnapshot{data: slices.Clone(sn.Data)}
	}
	for _, c := range st.Cooldowns {
		m.cooldowns[c.CooldownRef] = memWindow{owner: c.EventID, until: ms(c.Until)}
	}
	for _, a := range st.Done {
		m.actions[a] = memAction{}
	}
	for _, e := range st.Enrollments {
		var until int64
		if !e.Until.IsZero() {
			until = ms(e.Until)
		}
		m.enrolls[e.EnrollmentRef] = memWindow{owner: e.ActionID, until: until}
	}
	return nil
}

// timerQueue is a min-heap of timers by due time, then by member, the
// order of the Redis sorted set.
type timerQueue []*memTimer

func compareTimers(a, b *memTimer) int {
	if a.score != b.score {
		if a.score < b.score {
			return -1
		}
		return 1
	}
	switch {
	case a.member < b.member:
		return -1
	case a.member > b.member:
		return 1
	}
	return 0
}

func (q timerQueue) Len() int           { return len(q) }
func (q timerQueue) Less(i, j int) bool { return compareTimers(q[i], q[j]) < 0 }
func (q timerQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *timerQueue) Push(x any) {
	t := x.(*memTimer)
	t.index = len(*q)
	*q = append(*q, t)
}
func (q *timerQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	t.index = -1
	return t
}

// set queues t at score, or moves it there.
func (q *timerQueue) set(t *memTimer, score int64) {
	t.score = score
	if t.index < 0 {
		heap.Push(q, t)
		return
	}
	heap.Fix(q, t.index)
}

// remove takes t out of the queue if it is in it.
func (q *timerQueue) remove(t *memTimer) {
	if t.index >= 0 {
		heap.Remove(q, t.index)
	}
}
