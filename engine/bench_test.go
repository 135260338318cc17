package engine

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

// benchRules writes n opportunity automations over the workspaces, each
// `record.type == T && record.stage == S && record.amount > A` with
// categorical values of varying cardinality, so that about 1% of events
// fire something at 1k automations in a workspace.
func benchRules(n, workspaces int) []rules.Source {
	var srcs []rules.Source
	per := n / workspaces
	for w := 0; w < workspaces; w++ {
		var b strings.Builder
		fmt.Fprintf(&b, "workspace: ws%d\nautomations:\n", w)
		for i := 0; i < per; i++ {
			fmt.Fprintf(&b, "  - id: w%d-a%d\n    when: {record: opportunity}\n    if: record.type == \"T%d\" && record.stage == %q && record.amount > %d\n    fire: every_time\n    then: {flow: {id: f%d, who: record.primary_contact_id}}\n",
				w, i, i%200, genStages[i%len(genStages)], 100000*(i%10), i%7)
		}
		srcs = append(srcs, rules.Source{Name: fmt.Sprintf("ws%d.yaml", w), Data: []byte(b.String())})
	}
	return srcs
}

func benchEvents(schema *rules.Schema, n, workspaces int) []*Event {
	r := rand.New(rand.NewSource(1))
	opp, _ := schema.Object(rules.ObjOpportunity)
	evs := make([]*Event, n)
	for i := range evs {
		rec, err := opp.NewRecord(map[string]any{
			"id": fmt.Sprintf("o%d", r.Intn(100000)), "type": fmt.Sprintf("T%d", r.Intn(2000)),
			"stage": genStages[r.Intn(len(genStages))], "amount": float64(r.Intn(1200000)),
			"primary_contact_id": fmt.Sprintf("c%d", r.Intn(1000)), "name": "Renewal 2027", "owner_id": "u-1",
		}, rules.Limits{})
		if err != nil {
			panic(err)
		}
		evs[i] = &Event{ID: fmt.Sprintf("e%d", i), Type: TypeRecordUpdated, Time: time.Unix(1e9, 0),
			Workspace: fmt.Sprintf("ws%d", r.Intn(workspaces)), Object: rules.ObjOpportunity, Record: rec}
	}
	return evs
}

// BenchmarkProcess measures events/s through Engine.Process (matching,
// evaluation, and the Redis claim round trip per batch of 500 events) with
// the index and with every rule evaluated, on the same rules and events.
func BenchmarkProcess(b *testing.B) {
	cases := []struct{ automations, workspaces int }{{100, 1}, {1000, 1}, {10000, 1}, {100000, 1000}}
	for _, cs := range cases {
		c, err := rules.NewCompiler(rules.CompilerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		set, err := c.LoadSources(benchRules(cs.automations, cs.workspaces))
		if err != nil {
			b.Fatal(err)
		}
		events := benchEvents(c.Schema(), 20000, cs.workspaces)
		for _, noIndex := range []bool{false, true} {
			mode := "indexed"
			if noIndex {
				mode = "every-rule"
			}
			b.Run(fmt.Sprintf("automations=%d/workspaces=%d/%s", cs.automations, cs.workspaces, mode), func(b *testing.B) {
				rdb, prefix := testenv.Redis(b)
				e, err := New(Options{Rules: set, Schema: c.Schema(), Store: NewRedisStore(rdb, prefix, StoreTTLs{}), NoIndex: noIndex})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				runsOut := 0
				for i := 0; i < b.N; i += 500 {
					lo := i % len(events)
					hi := min(lo+500, len(events), lo+b.N-i)
					out, err := e.Process(ctx, events[lo:hi])
					if err != nil {
						b.Fatal(err)
					}
					runsOut += len(out.Runs)
					if err := e.Commit(ctx, out); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64(runsOut)/float64(b.N), "runs/event")
			})
		}
	}
}
