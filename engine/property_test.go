package engine

import (
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

// TestIndexEqualsEveryRule: for random rules and events, the indexed
// engine produces exactly what evaluating every rule produces.
func TestIndexEqualsEveryRule(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		r := rand.New(rand.NewSource(seed))
		c, err := rules.NewCompiler(rules.CompilerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		set, err := c.Compile(randomRules(r, 120, []string{"", "acme"}))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		mk := func(noIndex bool) *Engine {
			rdb, prefix := testenv.Redis(t)
			st, err := store.NewRedis(rdb, prefix, store.Options{Schema: c.Schema()})
			if err != nil {
				t.Fatal(err)
			}
			e, err := New(Options{Rules: set, Schema: c.Schema(), Store: st,
				Clock: func() time.Time { return now }, NoIndex: noIndex})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		indexed, naive := mk(false), mk(true)
		total := 0
		for batch := 0; batch < 10; batch++ {
			var evs []*Event
			for i := 0; i < 40; i++ {
				ws := ""
				if r.Intn(2) == 0 {
					ws = "acme"
				}
				evs = append(evs, randomEvent(r, c.Schema(), batch*100+i, ws, 15))
			}
			var outs [2][]string
			for k, e := range []*Engine{indexed, naive} {
				out, err := e.Process(context.Background(), evs, "")
				if err != nil {
					t.Fatal(err)
				}
				if err := e.Commit(context.Background(), out); err != nil {
					t.Fatal(err)
				}
				outs[k] = summarize(out)
			}
			if len(outs[0]) != len(outs[1]) {
				t.Fatalf("seed %d batch %d: indexed gave %d lines, every-rule %d", seed, batch, len(outs[0]), len(outs[1]))
			}
			for i := range outs[0] {
				if outs[0][i] != outs[1][i] {
					t.Fatalf("seed %d batch %d line %d:\n indexed:    %s\n every rule: %s", seed, batch, i, outs[0][i], outs[1][i])
				}
			}
			total += len(outs[0])
			now = now.Add(10 * time.Minute)
		}
		if total == 0 {
			t.Fatalf("seed %d: no runs at all; the workload tests nothing", seed)
		}
	}
}
