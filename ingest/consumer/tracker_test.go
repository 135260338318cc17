package consumer

import (
	"testing"
)

func TestTrackerCommitsContiguousPrefixOnly(t *testing.T) {
	tr := newTracker()
	if _, ok := tr.toCommit(); ok {
		t.Fatal("empty tracker has something to commit")
	}
	// Offsets with a gap (compaction, transaction markers): 3, 4, 7, 8, 9.
	for _, off := range []int64{3, 4, 7, 8, 9} {
		if !tr.add(off) {
			t.Fatalf("add(%d) = false", off)
		}
	}
	steps := []struct {
		done []int64
		want int64 // -1: nothing to commit
	}{
		{[]int64{7, 8}, -1}, // 3 and 4 are not done: nothing below 7 is committable
		{[]int64{4}, -1},    // 3 still open
		{[]int64{3}, 9},     // 3, 4, 7, 8 done: commit position is 8 + 1
		{[]int64{9}, 10},
	}
	for i, s := range steps {
		tr.done(s.done)
		pos, ok := tr.toCommit()
		if s.want < 0 {
			if ok {
				t.Fatalf("step %d: toCommit = %d, want nothing", i, pos)
			}
			continue
		}
		if !ok || pos != s.want {
			t.Fatalf("step %d: toCommit = %d, %v; want %d", i, pos, ok, s.want)
		}
	}
}

func TestTrackerRejectsRedeliveries(t *testing.T) {
	tr := newTracker()
	for _, off := range []int64{10, 11, 12} {
		tr.add(off)
	}
	// After a rebalance the reader restarts at the committed offset, 10:
	// what was already fetched is dropped, what follows is new.
	for _, off := range []int64{10, 11, 12} {
		if tr.add(off) {
			t.Errorf("add(%d) again = true, want false (a redelivery)", off)
		}
	}
	if !tr.add(13) {
		t.Error("add(13) = false, want true")
	}
	// A partition another member moved ahead of us: offsets jump forward.
	if !tr.add(40) {
		t.Error("add(40) = false, want true")
	}
}

func TestTrackerCommittedNeverMovesBack(t *testing.T) {
	tr := newTracker()
	for off := int64(0); off < 5; off++ {
		tr.add(off)
	}
	tr.done([]int64{0, 1, 2, 3, 4})
	pos, ok := tr.toCommit()
	if !ok || pos != 5 {
		t.Fatalf("toCommit = %d, %v; want 5", pos, ok)
	}
	// Another member committed 20: our 5 would move the group back.
	tr.committedAt(20)
	if pos, ok := tr.toCommit(); ok {
		t.Fatalf("toCommit = %d after the group moved to 20, want nothing", pos)
	}
	tr.committedAt(3) // an older view never lowers the floor
	if pos, ok := tr.toCommit(); ok {
		t.Fatalf("toCommit = %d after committedAt(3), want nothing", pos)
	}
}

func TestTrackerCompacts(t *testing.T) {
	tr := newTracker()
	for off := range int64(10_000) {
		tr.add(off)
		tr.done([]int64{off})
	}
	if pos, ok := tr.toCommit(); !ok || pos != 10_000 {
		t.Fatalf("toCommit = %d, %v; want 10000", pos, ok)
	}
	if n := len(tr.pending) - tr.head; n != 0 {
		t.Errorf("%d offsets still pending, want 0", n)
	}
	if cap(tr.pending) > 1024 {
		t.Errorf("pending has capacity %d after every offset was done: not compacted", cap(tr.pending))
	}
}
