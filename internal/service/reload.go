package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/whenthen/whenthen/rules"
)

// maxLoggedRuleErrors caps the rule errors one failed reload logs.
const maxLoggedRuleErrors = 100

// Reload loads the rule files again with the same compiler (unchanged
// expressions are not compiled again) and, if the whole set is valid,
// swaps it in; batches in flight finish with the set they started with.
// On error the old set stays live, the errors are logged and returned, and
// whenthen_rule_reloads_total{result="failure"} counts it. Reloads are
// serialised.
func (s *Service) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.rulesSeen = rules.Fingerprint(s.opts.Rules)
	return s.reloadLocked()
}

func (s *Service) reloadLocked() error {
	start := time.Now()
	set, err := s.compileRules()
	if err != nil {
		s.m.reloads.WithLabelValues("failure").Inc()
		s.m.lastFailure.SetToCurrentTime()
		var list rules.ErrorList
		if errors.As(err, &list) {
			msgs := make([]string, 0, min(len(list), maxLoggedRuleErrors))
			for _, e := range list[:min(len(list), maxLoggedRuleErrors)] {
				msgs = append(msgs, e.Error())
			}
			s.log.Error("rule reload failed; the previous rules stay live", "errors", len(list), "list", msgs)
		} else {
			s.log.Error("rule reload failed; the previous rules stay live", "err", err)
		}
		return fmt.Errorf("reload rules: %w", err)
	}
	s.engine.SetRules(set)
	s.m.reloads.WithLabelValues("success").Inc()
	s.m.lastReload.SetToCurrentTime()
	sum := set.Summary()
	s.log.Info("rules reloaded", "files", sum.Files, "automations", sum.Automations, "enabled", sum.Enabled,
		"duration", time.Since(start).Round(time.Microsecond))
	return nil
}

// watchRules reloads the rules whenever their fingerprint changes, checked
// every ReloadInterval. (fsnotify is not a dependency; polling a few files
// is cheap.) A failed reload is not retried until the files change again.
func (s *Service) watchRules(ctx context.Context) {
	t := time.NewTicker(s.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := rules.Fingerprint(s.opts.Rules)
		s.reloadMu.Lock()
		if fp != s.rulesSeen {
			s.rulesSeen = fp
			s.log.Info("rule files changed; reloading")
			_ = s.reloadLocked()
		}
		s.reloadMu.Unlock()
	}
}

// compileRules reads the rule files and compiles them.
func (s *Service) compileRules() (*rules.Set, error) {
	srcs, err := rules.ReadFiles(s.opts.Rules...)
	if err != nil {
		return nil, err
	}
	return s.compiler.Compile(srcs)
}
