package rules

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/common/types"
)

// kindClause caches the programs of single condition clauses, which
// `whenthen explain` and the coverage of `whenthen test` evaluate one by one.
const kindClause progKind = kindWho + 1

// ClausePrograms compiles each top-level clause of a's condition
// (Condition.Clauses) on its own, in the automation's CEL environment, so
// that a tool can tell which clauses of a condition hold. Programs come
// from the compiler's cache: an automation loaded again, or two
// automations sharing a clause, compile it once. A condition of one clause
// is its own program. It returns nil for an automation without a
// condition, and an error naming the clause if one does not compile on
// its own (Clauses are cut from the source text, so this would be a bug).
func (c *Compiler) ClausePrograms(a *Automation) ([]*Program, error) {
	if a.If == nil {
		return nil, nil
	}
	if len(a.If.Clauses) <= 1 {
		return []*Program{a.If.Program}, nil
	}
	key := envKey(a.Trigger.Kind, a.Trigger.Object)
	if _, ok := c.envs[key]; !ok {
		return nil, fmt.Errorf("automation %s: no CEL environment for a %s trigger on %q", a.ID, a.Trigger.Kind, a.Trigger.Object)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Program, len(a.If.Clauses))
	for i, cl := range a.If.Clauses {
		ck := progKey{env: key, kind: kindClause, expr: cl.Text}
		e, ok := c.cache[ck]
		if !ok {
			prg, _, iss := c.compile(key, cl.Text, func(t *types.Type) string {
				if t.Kind() != types.BoolKind && t.Kind() != types.DynKind {
					return fmt.Sprintf("must be a bool expression, but it is of type %s", t)
				}
				return ""
			})
			e = &cacheEntry{prog: prg, err: iss}
			c.cache[ck] = e
		}
		e.gen = c.gen
		if e.err != nil {
			msgs := make([]string, len(e.err))
			for j, is := range e.err {
				msgs[j] = is.msg
			}
			return nil, fmt.Errorf("automation %s: clause %d %q does not compile on its own: %s", a.ID, i+1, cl.Text, strings.Join(msgs, "; "))
		}
		out[i] = e.prog
	}
	return out, nil
}
