package rules_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/rules"
)

// TestWorkloadConditionsAreFast loads the bench workload's rules: every
// condition, and every who-expression but the .filter/.map ones, takes
// the fast path. It then evaluates them on the workload's events with
// both evaluators.
func TestWorkloadConditionsAreFast(t *testing.T) {
	w := gen.Workload{Automations: 1000, Workspaces: 1, Seed: 1}
	c, err := rules.NewCompiler(rules.CompilerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.Compile(w.Rules())
	if err != nil {
		t.Fatal(err)
	}
	var conds, fastConds, whos, fastWhos, macroWhos int
	for _, a := range set.Automations {
		if a.If != nil {
			conds++
			if a.If.Fast() {
				fastConds++
			} else {
				t.Errorf("%s: condition %q is not fast", a.ID, a.If.Expr)
			}
		}
		if a.Flow != nil && a.Flow.Who != nil {
			whos++
			macro := strings.Contains(a.Flow.Who.Expr, ".filter(") || strings.Contains(a.Flow.Who.Expr, ".map(")
			switch {
			case macro:
				macroWhos++
				if a.Flow.Who.Fast() {
					t.Errorf("%s: who %q is fast, but comprehensions are outside the subset", a.ID, a.Flow.Who.Expr)
				}
			case a.Flow.Who.Fast():
				fastWhos++
			default:
				t.Errorf("%s: who %q is not fast", a.ID, a.Flow.Who.Expr)
			}
		}
	}
	t.Logf("%d of %d conditions fast (%.1f%%); %d of %d who-expressions fast, %d more are .filter/.map",
		fastConds, conds, 100*float64(fastConds)/float64(conds), fastWhos, whos, macroWhos)
	if conds < 900 {
		t.Fatalf("only %d conditions in the workload", conds)
	}

	dec, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: c.Schema(), Limits: c.Limits()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var evals, trues int
	for _, msg := range w.Events(300) {
		ev, err := dec.Decode(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		act := workloadActivation(c.Schema(), ev)
		for _, a := range set.Automations {
			if !triggeredBy(a, ev) {
				continue
			}
			for _, p := range []*rules.Program{programOf(a.If), whoOf(a)} {
				if p == nil {
					continue
				}
				evals++
				v, err := p.Eval(ctx, act)
				cv, cerr := p.EvalCEL(ctx, act)
				if (err == nil) != (cerr == nil) || (err == nil && (v.Type() != cv.Type() || v.Equal(cv) != types.True)) {
					t.Fatalf("%s on %s: %q: Eval %v, %v; EvalCEL %v, %v", a.ID, ev.ID, p.Expr, v, err, cv, cerr)
				}
				if v == types.True {
					trues++
				}
			}
		}
	}
	t.Logf("%d evaluations on the workload's events, %d true, all equal", evals, trues)
	if evals < 10000 || trues == 0 {
		t.Fatalf("%d evaluations, %d true: too few", evals, trues)
	}
}

func programOf(c *rules.Condition) *rules.Program {
	if c == nil {
		return nil
	}
	return c.Program
}

func whoOf(a *rules.Automation) *rules.Program {
	if a.Flow == nil {
		return nil
	}
	return a.Flow.Who
}

func triggeredBy(a *rules.Automation, ev *engine.Event) bool {
	switch a.Trigger.Kind {
	case rules.TriggerRecord:
		return ev.Record != nil && ev.Object == a.Trigger.Object && ev.Type != engine.TypeScheduleFired
	case rules.TriggerTracker:
		return ev.Tracker != nil
	}
	return false
}

// workloadActivation binds the variables as the engine does for a full
// record event.
func workloadActivation(s *crm.Schema, ev *engine.Event) interpreter.Activation {
	acc, _ := s.Object(crm.ObjAccount)
	opp, _ := s.Object(crm.ObjOpportunity)
	or := func(r *crm.Record, o *crm.Object) *crm.Record {
		if r == nil {
			return o.Empty()
		}
		return r
	}
	vars := map[string]any{
		rules.VarAccount: or(ev.Account, acc), rules.VarOpportunity: or(ev.Opportunity, opp),
		rules.VarTracker: or(ev.Tracker, s.Tracker), rules.VarEvent: s.Event.Empty(),
		rules.VarNow: types.Timestamp{Time: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)},
	}
	if ev.Record != nil {
		after := ev.Record
		before := after.Object().Empty()
		if ev.Before != nil {
			before = after.Merge(ev.Before)
		}
		vars[rules.VarRecord], vars[rules.VarBefore] = after, before
		vars[rules.VarChanged] = types.NewStringList(types.DefaultTypeAdapter, before.Changed(after))
		switch after.Object().Name {
		case crm.ObjAccount:
			vars[rules.VarAccount] = after
		case crm.ObjOpportunity:
			vars[rules.VarOpportunity] = after
		}
	}
	act, _ := interpreter.NewActivation(vars)
	return act
}
