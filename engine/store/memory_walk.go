package store

import (
	"context"
	"sort"
	"strconv"
	"time"
)

// learn and forget keep the known records; m.mu is held.
func (m *Memory) learn(r RecordRef) {
	k := knownKey{r.Workspace, r.Object}
	kn := m.known[k]
	if kn == nil {
		kn = &memKnown{ids: map[string]struct{}{}}
		m.known[k] = kn
	}
	if _, ok := kn.ids[r.ID]; !ok {
		kn.ids[r.ID] = struct{}{}
		kn.dirty = true
	}
}

func (m *Memory) forget(r RecordRef) {
	if kn := m.known[knownKey{r.Workspace, r.Object}]; kn != nil {
		if _, ok := kn.ids[r.ID]; ok {
			delete(kn.ids, r.ID)
			kn.dirty = true
		}
	}
}

// KnownRecords returns up to count known record ids after cursor (the
// last id of the previous chunk; "" at the start), in id order, and the
// cursor to go on from ("" when the walk is over).
func (m *Memory) KnownRecords(ctx context.Context, workspace, object, cursor string, count int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	kn := m.known[knownKey{workspace, object}]
	if kn == nil {
		return nil, "", nil
	}
	if kn.dirty || kn.sorted == nil {
		kn.sorted = kn.sorted[:0]
		for id := range kn.ids {
			kn.sorted = append(kn.sorted, id)
		}
		sort.Strings(kn.sorted)
		kn.dirty = false
	}
	i := 0
	if cursor != "" {
		// The cursor is "+" and the last id given, so that an empty id
		// (never stored) cannot be mistaken for the start.
		i = sort.SearchStrings(kn.sorted, cursor[1:])
		if i < len(kn.sorted) && kn.sorted[i] == cursor[1:] {
			i++
		}
	}
	end := min(i+max(count, 1), len(kn.sorted))
	ids := append([]string(nil), kn.sorted[i:end]...)
	if end == len(kn.sorted) {
		return ids, "", nil
	}
	return ids, "+" + kn.sorted[end-1], nil
}

// WalkMarks returns the marks of walks, as Redis.WalkMarks does.
func (m *Memory) WalkMarks(ctx context.Context, refs []WalkRef, init []string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, len(refs))
	for i, r := range refs {
		w := m.walk(r)
		if !w.hasMark && i < len(init) && init[i] != "" {
			w.mark, w.hasMark = init[i], true
		}
		out[i] = w.mark
	}
	return out, nil
}

func (m *Memory) walk(r WalkRef) *memWalk {
	w := m.walks[r]
	if w == nil {
		w = &memWalk{}
		m.walks[r] = w
	}
	return w
}

// StartWalks starts or resumes walks as Redis's start script does.
func (m *Memory) StartWalks(ctx context.Context, starts []WalkStart, token string, now time.Time) ([]WalkState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := ms(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]WalkState, len(starts))
	for i, st := range starts {
		w := m.walk(st.Ref)
		if w.hasMark && (st.Ordered && num(st.Target) <= num(w.mark) || !st.Ordered && w.mark == st.Target) {
			out[i] = WalkState{Status: WalkDone}
			continue
		}
		if w.leaseToken != "" && w.leaseToken != token && w.leaseUntil > n &&
			(!st.Ordered || w.hasTarget && num(w.target) >= num(st.Target)) {
			out[i] = WalkState{Status: WalkBusy}
			continue
		}
		if !w.hasTarget || w.target != st.Target {
			w.target, w.hasTarget, w.cursor = st.Target, true, ""
		}
		w.leaseToken, w.leaseUntil = token, n+m.lease
		out[i] = WalkState{Status: WalkOurs, Cursor: w.cursor}
	}
	return out, nil
}

// advance applies a walk advance as Redis's advance script does; m.mu is
// held.
func (m *Memory) advance(a WalkAdvance) {
	w := m.walks[a.Ref]
	if w == nil || w.leaseToken == "" || w.leaseToken != a.Token || !w.hasTarget || w.target != a.Target {
		return
	}
	if a.Done {
		w.mark, w.hasMark = a.Target, true
		w.target, w.hasTarget, w.cursor = "", false, ""
	} else {
		w.cursor = a.Cursor
	}
	w.leaseToken, w.leaseUntil = "", 0
}

// num reads a decimal number as the Lua scripts do (tonumber); what is
// not one reads as 0.
func num(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
}
