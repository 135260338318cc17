package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/interpreter"
	"github.com/whenthen/whenthen/crm"
)

// hostileLoadable are expressions meant to cost as much as the loader
// lets through: comprehensions and string operations over the largest
// inputs the limits allow. Each either fails to load (its estimate is
// over the budget) or is measured by TestHostileCostFigures.
var hostileLoadable = []struct{ name, cond string }{
	{"exists over the list", `record.competitors.exists(c, c == record.name)`},
	{"all with contains", `record.competitors.all(c, !c.contains("zz"))`},
	{"filter size", `record.competitors.filter(c, c.startsWith("a")).size() > 10`},
	{"map concat", `record.competitors.map(c, c + c).size() > 0`},
	{"map upper", `record.competitors.map(c, c.upperAscii()).size() > 0`},
	{"name contains each", `record.competitors.exists(c, record.name.contains(c))`},
	{"matches on the name", `record.name.matches("^(a|b|c)*d$")`},
	{"name concat", `(record.name + record.name + record.name + record.name).size() > 10`},
	{"name replace", `record.name.replace("a", "bb").size() > 10`},
	{"name split", `record.name.split("a").size() > 10`},
	{"join", `record.competitors.join(",").size() > 10`},
	{"nested exists", `record.competitors.exists(a, record.competitors.exists(b, a == b + "x"))`},
	{"lists.range small", `lists.range(1000).exists(i, i == record.seats)`},
	{"sets.contains", `sets.contains(record.competitors, ["a", "b"])`},
	{"map dyn", `record.notes_meta.exists(k, k.size() > 3)`},
	{"in list", `record.name in record.competitors`},
	{"distinct", `record.competitors.distinct().size() > 1`},
	{"sort", `record.competitors.sort().size() > 1`},
	{"flatten", `[record.competitors, record.competitors].flatten().size() > 1`},
	{"reverse string", `record.name.reverse().size() > 1`},
	{"format", `"%s".format([record.name]).size() > 1`},
	{"exists size", `record.competitors.exists(c, c.size() > 999999)`},
	{"filter map exists", `record.competitors.filter(c, c.size() > 3).map(c, c.size()).exists(n, n > 5)`},
	{"all over map keys", `record.notes_meta.all(k, k.startsWith("key-"))`},
	{"two comprehensions", `record.competitors.exists(c, c.endsWith("x")) || record.notes_meta.exists(k, k.endsWith("x"))`},
}

// hostileInputs are the largest records of two kinds: what one message
// under the decoder's default 1 MiB can carry (a 64 KiB name and 900
// strings of 1,000 bytes), and what the limits the cost estimate assumes
// allow (1,000 strings of 64 KiB: 64 MiB, reachable only with a raised
// decoder.max_bytes).
func hostileInputs(t testing.TB, o *crm.Object) map[string]*crm.Record {
	lim := crm.DefaultLimits
	mk := func(n, size int) *crm.Record {
		list := make([]any, n)
		for i := range list {
			list[i] = strings.Repeat(string(rune('a'+i%26)), size-1) + "d"
		}
		meta := map[string]any{}
		for i := range lim.MaxMapEntries - 1 {
			meta[fmt.Sprintf("key-%d", i)] = json.Number("1")
		}
		m := map[string]any{"id": "o", "name": strings.Repeat("ab", lim.MaxStringBytes/2-1) + "c", "competitors": list,
			"seats": json.Number("7"), "notes_meta": meta}
		r, err := o.NewRecord(m, lim)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return map[string]*crm.Record{
		"1MiB message": mk(900, 1000),
		"limits":       mk(lim.MaxListLen, lim.MaxStringBytes),
	}
}

// TestHostileCostFigures loads each expression of hostileLoadable; for
// each that loads, it evaluates it over the largest inputs and reports
// the worst evaluation time and the bytes allocated by one evaluation.
// Evaluation must end (the cost limit, or an answer) in bounded time.
func TestHostileCostFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("measures evaluations over 64 MiB inputs")
	}
	c := testCompiler(t)
	opp, _ := c.Schema().Object(crm.ObjOpportunity)
	inputs := hostileInputs(t, opp)
	var worst struct {
		d     time.Duration
		alloc uint64
		what  string
	}
	loaded := 0
	for _, h := range hostileLoadable {
		set, err := c.Compile([]Source{{Name: "t.yaml", Data: []byte(oppAutomation(h.cond))}})
		if err != nil {
			msg := err.Error()
			if i := strings.Index(msg, "estimated"); i >= 0 {
				msg = msg[i:]
			}
			t.Logf("%-22s rejected at load: %.90s", h.name, msg)
			continue
		}
		loaded++
		a := set.Automations[0]
		for _, in := range []string{"1MiB message", "limits"} {
			act, _ := interpreter.NewActivation(map[string]any{VarRecord: inputs[in]})
			var maxD time.Duration
			var alloc uint64
			var out string
			for range 3 {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				begin := time.Now()
				v, err := a.If.Eval(context.Background(), act)
				d := time.Since(begin)
				runtime.ReadMemStats(&after)
				maxD = max(maxD, d)
				alloc = max(alloc, after.TotalAlloc-before.TotalAlloc)
				out = fmt.Sprint(v)
				if err != nil {
					out = "error: " + err.Error()
				}
			}
			t.Logf("%-22s %-13s worst %9v  alloc %8.1f MiB  → %.60s", h.name, in, maxD.Round(time.Microsecond), float64(alloc)/(1<<20), out)
			if maxD > worst.d {
				worst.d, worst.what = maxD, h.name+" / "+in
			}
			worst.alloc = max(worst.alloc, alloc)
			if maxD > 5*time.Second {
				t.Errorf("%s over %s: %v for one evaluation", h.name, in, maxD)
			}
		}
	}
	t.Logf("hostile CEL: %d of %d loaded; worst evaluation %v (%s); most allocated by one evaluation %.1f MiB",
		loaded, len(hostileLoadable), worst.d.Round(time.Microsecond), worst.what, float64(worst.alloc)/(1<<20))
}
