package bench_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/whenthen/whenthen/bench"
	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/internal/testenv"
)

// BenchmarkProcess measures events/s through Engine.Process (it was in
// package engine's tests; it lives beside the harness it drives) (matching,
// evaluation, and the Redis round trips of each batch of 500) on the
// bench workloads, with the index and with every rule evaluated (its
// cel-go programs planned before the timer starts), on the same rules and
// events. b.N counts events.
func BenchmarkProcess(b *testing.B) {
	cases := []gen.Workload{
		{Automations: 100, Workspaces: 1, Seed: 1},
		{Automations: 1000, Workspaces: 1, Seed: 1},
		{Automations: 10000, Workspaces: 1, Seed: 1},
		{Automations: 100000, Workspaces: 1000, Seed: 1},
		{Automations: 10000, Workspaces: 1, Seed: 1, Fanout: true},
	}
	for _, w := range cases {
		var setup *bench.Setup
		for _, noIndex := range []bool{false, true} {
			mode := "indexed"
			if noIndex {
				mode = "every-rule"
			}
			name := fmt.Sprintf("automations=%d/workspaces=%d/%s", w.Automations, w.Workspaces, mode)
			if w.Fanout {
				name = fmt.Sprintf("automations=%d/workspaces=%d/fanout/%s", w.Automations, w.Workspaces, mode)
			}
			b.Run(name, func(b *testing.B) {
				if setup == nil {
					var err error
					if setup, err = bench.Prepare(w, 20000); err != nil {
						b.Fatal(err)
					}
				}
				rdb, prefix := testenv.Redis(b)
				e, err := setup.Engine(rdb, prefix, noIndex)
				if err != nil {
					b.Fatal(err)
				}
				if noIndex {
					if _, err := setup.PlanConditions(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				res, err := setup.RunEngine(context.Background(), e, b.N, 500, time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.EventsPerSec, "events/s")
				b.ReportMetric(float64(res.Runs)/float64(res.Events), "runs/event")
				b.ReportMetric(float64(res.Actions)/float64(res.Events), "actions/event")
			})
		}
	}
}
