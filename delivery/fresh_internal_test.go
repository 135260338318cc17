package delivery

import (
	"testing"
	"time"

	"github.com/whenthen/whenthen/engine/store"
)

// TestAsNew: a snapshot stored at the millisecond of its event is as new
// as the event, whatever the event's nanoseconds (every action of a
// stateful record waited the whole freshWait when events carried more
// precision than the stored millisecond).
func TestAsNew(t *testing.T) {
	ev := time.Date(2026, 12, 6, 22, 4, 31, 638318381, time.UTC)
	stored := time.UnixMilli(ev.UnixMilli()).UTC() // as the store reads it back
	for _, c := range []struct {
		snap time.Time
		want bool
	}{
		{stored, true},
		{ev, true},
		{stored.Add(time.Millisecond), true},
		{stored.Add(-time.Millisecond), false},
		{ev.Add(-time.Second), false},
	} {
		if got := asNew(&store.Snapshot{Time: c.snap}, ev); got != c.want {
			t.Errorf("snapshot at %v, event at %v: as new %v, want %v", c.snap, ev, got, c.want)
		}
	}
}
