package authoring

import (
	"context"
	"fmt"
	"io"
	"strings"

	"cel.dev/cel-go/interpreter"

	"github.com/whenthen/whenthen/rules"
)

// Coverage is what the tests of one rule set exercised: which enabled
// automations ran (a run of any outcome), and for each condition which
// top-level clauses were ever seen true and ever false. A clause is
// evaluated, on its own, for every event whose trigger the automation
// takes and every timer of it that comes due, whatever the other clauses
// give.
type Coverage struct {
	// Rules are the rule paths of the set, as the test files name them.
	Rules       []string
	Automations []*AutomationCoverage
	byID        map[string]*AutomationCoverage
}

// AutomationCoverage is one enabled automation's coverage.
type AutomationCoverage struct {
	ID string `json:"id"`
	// Runs counts the runs of the automation, any outcome.
	Runs    int               `json:"runs"`
	Clauses []*ClauseCoverage `json:"clauses,omitempty"`
}

// ClauseCoverage counts one clause's values.
type ClauseCoverage struct {
	Text   string `json:"clause"`
	True   int    `json:"true"`
	False  int    `json:"false"`
	Errors int    `json:"errors,omitempty"`
}

func newCoverage(paths []string, set *rules.Set, cc *clauseCache) *Coverage {
	c := &Coverage{Rules: paths, byID: map[string]*AutomationCoverage{}}
	for _, a := range set.Automations {
		if !a.Enabled {
			continue
		}
		ac := &AutomationCoverage{ID: a.ID}
		if a.If != nil {
			progs, _ := cc.of(a)
			for _, p := range progs {
				ac.Clauses = append(ac.Clauses, &ClauseCoverage{Text: p.Expr})
			}
		}
		c.Automations = append(c.Automations, ac)
		c.byID[a.ID] = ac
	}
	return c
}

// observe evaluates each clause of a's condition with vars.
func (c *Coverage) observe(ctx context.Context, cc *clauseCache, a *rules.Automation, vars interpreter.Activation) {
	ac := c.byID[a.ID]
	if ac == nil || a.If == nil {
		return
	}
	progs, _ := cc.of(a)
	for i, p := range progs {
		if i >= len(ac.Clauses) {
			break
		}
		v, err := evalBool(ctx, p, vars)
		switch {
		case err != nil:
			ac.Clauses[i].Errors++
		case v:
			ac.Clauses[i].True++
		default:
			ac.Clauses[i].False++
		}
	}
}

func (c *Coverage) ran(id string) {
	if ac := c.byID[id]; ac != nil {
		ac.Runs++
	}
}

// Exercised counts the automations that ran, of all enabled ones.
func (c *Coverage) Exercised() (ran, total int) {
	for _, a := range c.Automations {
		if a.Runs > 0 {
			ran++
		}
	}
	return ran, len(c.Automations)
}

// ClausesCovered counts the clauses seen both true and false, of all
// clauses of all conditions.
func (c *Coverage) ClausesCovered() (both, total int) {
	for _, a := range c.Automations {
		for _, cl := range a.Clauses {
			total++
			if cl.True > 0 && cl.False > 0 {
				both++
			}
		}
	}
	return both, total
}

func percent(n, total int) string {
	if total == 0 {
		return "100.0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

// WriteText prints the coverage figures, then each automation that never
// ran and each clause not seen both true and false.
func (c *Coverage) WriteText(w io.Writer) {
	ran, total := c.Exercised()
	both, clauses := c.ClausesCovered()
	fmt.Fprintf(w, "coverage of %s: %d/%d automations exercised (%s); %d/%d condition clauses seen both true and false (%s)\n",
		strings.Join(c.Rules, ", "), ran, total, percent(ran, total), both, clauses, percent(both, clauses))
	for _, a := range c.Automations {
		evaluated := false
		for _, cl := range a.Clauses {
			evaluated = evaluated || cl.True+cl.False+cl.Errors > 0
		}
		switch {
		case a.Runs == 0 && len(a.Clauses) > 0 && !evaluated:
			fmt.Fprintf(w, "  %s: never ran; no event or timer of its trigger evaluated its condition\n", a.ID)
			continue
		case a.Runs == 0:
			fmt.Fprintf(w, "  %s: never ran\n", a.ID)
		}
		for _, cl := range a.Clauses {
			var never []string
			if cl.True == 0 {
				never = append(never, "true")
			}
			if cl.False == 0 {
				never = append(never, "false")
			}
			if len(never) == 0 {
				continue
			}
			what := "never " + strings.Join(never, " nor ")
			if cl.True+cl.False == 0 {
				what = "never evaluated"
			}
			if cl.Errors > 0 {
				what += fmt.Sprintf(" (%d evaluation errors)", cl.Errors)
			}
			fmt.Fprintf(w, "  %s: clause `%s` %s\n", a.ID, cl.Text, what)
		}
	}
}
