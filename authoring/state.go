package authoring

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/rules"
)

// newMemory is fresh, isolated engine state in memory.
func newMemory(schema *crm.Schema, log *slog.Logger) (*store.Memory, error) {
	return store.NewMemory(store.Options{Schema: schema, Logger: log})
}

// newReplay runs set in simulated time on fresh in-memory state.
func newReplay(set *rules.Set, schema *crm.Schema, log *slog.Logger) (*engine.Replay, error) {
	st, err := newMemory(schema, log)
	if err != nil {
		return nil, err
	}
	return engine.NewReplay(engine.Options{Rules: set, Schema: schema, Store: st, Logger: log})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// triggerMatch tells whether an event is one that a's trigger takes
// (engine.Accepts), and if not, why.
func triggerMatch(a *rules.Automation, ev *engine.Event) (bool, string) {
	r := engine.Accepts(a, ev)
	return r == engine.Accepted, r.Explain(a, ev)
}

// clauseCache compiles the clause programs of a set's automations once.
type clauseCache struct {
	c     *rules.Compiler
	progs map[*rules.Automation]clausePrograms
}

type clausePrograms struct {
	progs []*rules.Program
	err   error
}

func newClauseCache(c *rules.Compiler) *clauseCache {
	return &clauseCache{c: c, progs: map[*rules.Automation]clausePrograms{}}
}

// of returns the programs of a's top-level clauses, in order; the whole
// condition as one clause when they cannot be compiled on their own.
func (cc *clauseCache) of(a *rules.Automation) ([]*rules.Program, error) {
	p, ok := cc.progs[a]
	if !ok {
		p.progs, p.err = cc.c.ClausePrograms(a)
		if p.err != nil && a.If != nil {
			p.progs = []*rules.Program{a.If.Program}
		}
		cc.progs[a] = p
	}
	return p.progs, p.err
}

// evalBool evaluates a condition or clause: its value, or the
// evaluation error.
func evalBool(ctx context.Context, p *rules.Program, vars interpreter.Activation) (bool, error) {
	v, err := p.Eval(ctx, vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("gave a %s, not a bool", v.Type().TypeName())
	}
	return bool(b), nil
}
