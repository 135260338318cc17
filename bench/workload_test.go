package bench

import (
	"context"
	"testing"
	"time"

	"github.com/whenthen/whenthen/bench/gen"
)

// TestFanoutWorkload: the unselective rule set loads, and through `whenthen
// eval`'s path its events run tens of automations each, where the
// selective one runs a few per hundred events.
func TestFanoutWorkload(t *testing.T) {
	for _, tc := range []struct {
		w        gen.Workload
		min, max float64 // runs per event
	}{
		{gen.Workload{Automations: 2000, Workspaces: 1, Seed: 1}, 0, 0.5},
		{gen.Workload{Automations: 2000, Workspaces: 1, Seed: 1, Fanout: true}, 2, 15},
	} {
		t.Run(Scenario{Automations: tc.w.Automations, Workspaces: 1, Fanout: tc.w.Fanout}.Name(), func(t *testing.T) {
			s, err := Prepare(tc.w, 2000)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.RunEval(context.Background(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if r.Events != 2000 || r.EventsPerSec <= 0 {
				t.Fatalf("%d events at %v/s", r.Events, r.EventsPerSec)
			}
			runs := float64(r.Runs) / float64(r.Events)
			t.Logf("%.2f runs, %.2f actions per event, %.0f events/s", runs, float64(r.Actions)/float64(r.Events), r.EventsPerSec)
			if runs < tc.min || runs > tc.max {
				t.Errorf("%.2f runs per event, want %v to %v", runs, tc.min, tc.max)
			}
		})
	}
}
