package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/whenthen/whenthen/engine/store"
)

// walkAll lists every known record of acme's accounts in chunks of n.
func (e *env) walkAll(n int) []string {
	e.t.Helper()
	var all []string
	cursor := ""
	for i := 0; ; i++ {
		ids, next, err := e.s.KnownRecords(ctx, "acme", "account", cursor, n)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(ids) > n {
			e.t.Fatalf("a chunk of %d ids for a budget of %d", len(ids), n)
		}
		all = append(all, ids...)
		if next == "" {
			break
		}
		if i > 10000 {
			e.t.Fatal("the walk does not end")
		}
		cursor = next
	}
	slices.Sort(all)
	return slices.Compact(all) // Redis's SSCAN may give an id twice
}

func known(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	e := newEnv(t, open)
	snap := store.Snapshot{Record: e.rec(map[string]any{"id": "x"}), Time: t0}
	var saves []store.Save
	var want []string
	for i := range 250 {
		id := fmt.Sprintf("a%03d", i)
		saves = append(saves, store.Save{Ref: store.RecordRef{Workspace: "acme", Object: "account", ID: id}, Snapshot: snap})
		want = append(want, id)
	}
	// Another workspace and object are not acme's accounts.
	saves = append(saves, store.Save{Ref: store.RecordRef{Workspace: "globex", Object: "account", ID: "g1"}, Snapshot: snap},
		store.Save{Ref: store.RecordRef{Workspace: "acme", Object: "opportunity", ID: "o1"}, Snapshot: snap})
	e.apply(store.Writes{Saves: saves}, t0)
	t.Run("saved records are known, once each, in chunks", func(t *testing.T) {
		for _, n := range []int{1, 7, 100, 1000} {
			if got := e.walkAll(n); !slices.Equal(got, want) {
				t.Fatalf("chunks of %d: %d ids, want %d", n, len(got), len(want))
			}
		}
	})
	t.Run("deleted and forgotten records are not", func(t *testing.T) {
		e.apply(store.Writes{Deletes: []store.RecordRef{{Workspace: "acme", Object: "account", ID: "a007"}},
			Forget: []store.RecordRef{{Workspace: "acme", Object: "account", ID: "a100"}}}, t0)
		got := e.walkAll(50)
		if len(got) != 248 || slices.Contains(got, "a007") || slices.Contains(got, "a100") {
			t.Fatalf("%d ids after a delete and a forget", len(got))
		}
	})
	t.Run("none known", func(t *testing.T) {
		ids, next, err := e.s.KnownRecords(ctx, "nobody", "lead", "", 10)
		if err != nil || len(ids) != 0 || next != "" {
			t.Fatalf("%v %q %v", ids, next, err)
		}
	})
}

func (e *env) start(token string, now time.Time, starts ...store.WalkStart) string {
	e.t.Helper()
	st, err := e.s.StartWalks(ctx, starts, token, now)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, s := range st {
		switch s.Status {
		case store.WalkOurs:
			out = append(out, "ours@"+s.Cursor)
		case store.WalkDone:
			out = append(out, "done")
		case store.WalkBusy:
			out = append(out, "busy")
		}
	}
	return fmt.Sprint(out)
}

func walks(t *testing.T, open func(t *testing.T, opts store.Options) Store) {
	tick := store.WalkRef{Workspace: "acme", Object: "opportunity", Name: "s:weekly"}
	at := func(ms int64) store.WalkStart {
		return store.WalkStart{Ref: tick, Target: fmt.Sprint(ms), Ordered: true}
	}
	advance := func(e *env, target int64, token, cursor string, done bool) {
		e.apply(store.Writes{Advances: []store.WalkAdvance{{Ref: tick, Target: fmt.Sprint(target), Token: token, Cursor: cursor, Done: done}}}, t0)
	}
	t.Run("a first sight sets the mark once", func(t *testing.T) {
		e := newEnv(t, open)
		marks, err := e.s.WalkMarks(ctx, []store.WalkRef{tick, {Workspace: "acme", Object: "x", Name: "d:f"}}, []string{"1000", ""})
		if err != nil || fmt.Sprint(marks) != "[1000 ]" {
			t.Fatalf("%q %v", marks, err)
		}
		marks, _ = e.s.WalkMarks(ctx, []store.WalkRef{tick}, []string{"2000"})
		expect(t, "mark", marks[0], "1000")
		expect(t, "a tick at the mark", e.start("A", t0, at(1000)), "[done]")
		expect(t, "a tick before it", e.start("A", t0, at(900)), "[done]")
	})
	t.Run("walked in chunks, resumed by any instance, done once", func(t *testing.T) {
		e := newEnv(t, open)
		e.s.WalkMarks(ctx, []store.WalkRef{tick}, []string{"1000"})
		expect(t, "start", e.start("A", t0, at(2000)), "[ours@]")
		expect(t, "held", e.start("B", t0, at(2000)), "[busy]")
		advance(e, 2000, "A", "c1", false)
		// The advance released the lease: another instance goes on.
		expect(t, "resumed", e.start("B", t0, at(2000)), "[ours@c1]")
		advance(e, 2000, "A", "c9", false) // not A's any more: ignored
		advance(e, 2000, "B", "", true)
		expect(t, "done", e.start("C", t0, at(2000)), "[done]")
		marks, _ := e.s.WalkMarks(ctx, []store.WalkRef{tick}, nil)
		expect(t, "mark", marks[0], "2000")
	})
	t.Run("a lease that ran out is taken over", func(t *testing.T) {
		e := newEnv(t, open)
		e.start("A", t0, at(2000))
		advance(e, 2000, "A", "c1", false)
		e.start("A", t0, at(2000)) // A holds it again, and dies
		expect(t, "during the lease", e.start("B", t0.Add(Lease-time.Millisecond), at(2000)), "[busy]")
		expect(t, "after it", e.start("B", t0.Add(Lease), at(2000)), "[ours@c1]")
		advance(e, 2000, "A", "c5", false) // A's late advance: ignored
		expect(t, "B's cursor stands", e.start("B", t0.Add(Lease), at(2000)), "[ours@c1]")
	})
	t.Run("a newer tick supersedes an older one, never the reverse", func(t *testing.T) {
		e := newEnv(t, open)
		e.start("A", t0, at(2000))
		advance(e, 2000, "A", "c1", false)
		e.start("A", t0, at(2000))
		expect(t, "the newer tick starts over", e.start("B", t0, at(3000)), "[ours@]")
		advance(e, 2000, "A", "c2", true) // the older walk's end: ignored
		expect(t, "an older tick waits", e.start("C", t0, at(2000)), "[busy]")
		advance(e, 3000, "B", "", true)
		expect(t, "both done", e.start("C", t0, at(2000), at(3000)), "[done done]")
	})
	t.Run("unordered targets: done when equal", func(t *testing.T) {
		e := newEnv(t, open)
		re := store.WalkRef{Workspace: "acme", Object: "account", Name: "d:renewal_date"}
		sig := func(s string) store.WalkStart { return store.WalkStart{Ref: re, Target: s} }
		expect(t, "start", e.start("A", t0, sig("v1")), "[ours@]")
		e.apply(store.Writes{Advances: []store.WalkAdvance{{Ref: re, Target: "v1", Token: "A", Done: true}}}, t0)
		expect(t, "same", e.start("B", t0, sig("v1")), "[done]")
		expect(t, "another", e.start("B", t0, sig("v0")), "[ours@]")
		expect(t, "held by B", e.start("C", t0, sig("v2")), "[busy]")
	})
}
