package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/rules"
)

// ruleSet is the live rules the history lists and checks, loaded as
// `whenthen run` loads them and reloaded when the files change (or on
// Reload): the whole new set is compiled first, and swapped in only if
// it is valid.
type ruleSet struct {
	paths    []string
	compiler *rules.Compiler // nil without rules
	live     atomic.Pointer[rules.Set]
	m        *metrics
	log      *slog.Logger

	mu   sync.Mutex
	seen string // fingerprint of the files at the last load attempt
}

func newRuleSet(paths []string, schemaPath string, m *metrics, log *slog.Logger) (*ruleSet, error) {
	rs := &ruleSet{paths: paths, m: m, log: log}
	if len(paths) == 0 {
		return rs, nil
	}
	schema := crm.DefaultSchema()
	if schemaPath != "" {
		var err error
		if schema, err = crm.LoadSchema(schemaPath); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
	}
	c, err := rules.NewCompiler(rules.CompilerOptions{Schema: schema})
	if err != nil {
		return nil, err
	}
	rs.compiler = c
	if err := rs.reload(); err != nil {
		return nil, err
	}
	return rs, nil
}

// get returns the compiler and the live set (both nil without rules).
func (rs *ruleSet) get() (*rules.Compiler, *rules.Set) { return rs.compiler, rs.live.Load() }

func (rs *ruleSet) reload() error {
	if rs.compiler == nil {
		return errors.New("no rule files configured")
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.seen = rules.Fingerprint(rs.paths)
	return rs.load()
}

func (rs *ruleSet) load() error {
	srcs, err := rules.ReadFiles(rs.paths...)
	var set *rules.Set
	if err == nil {
		set, err = rs.compiler.Compile(srcs)
	}
	if err != nil {
		rs.m.reloads.WithLabelValues("failure").Inc()
		if rs.live.Load() != nil {
			rs.log.Error("rule reload failed; the previous rules stay live", "err", err)
		}
		return fmt.Errorf("rules: %w", err)
	}
	rs.live.Store(set)
	rs.m.reloads.WithLabelValues("success").Inc()
	rs.m.rulesLoaded.Set(float64(len(set.Automations)))
	rs.log.Info("rules loaded", "automations", len(set.Automations))
	return nil
}

// watch reloads the rules when their files change, checked every
// interval, until ctx is done.
func (rs *ruleSet) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := rules.Fingerprint(rs.paths)
		rs.mu.Lock()
		if fp != rs.seen {
			rs.seen = fp
			_ = rs.load()
		}
		rs.mu.Unlock()
	}
}
