package authoring

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/rules"
)

// TestOptions configures RunTests.
type TestOptions struct {
	// Run selects the tests whose name it matches; nil runs all.
	Run *regexp.Regexp
	// Logger receives the engine's warnings; default: discarded (runs
	// with outcome error carry the message).
	Logger *slog.Logger
}

// Status is a test's result.
type Status string

// Test results.
const (
	Passed Status = "pass"
	// Failed: the test ran and an expectation was not met.
	Failed Status = "fail"
	// Errored: the test could not run (an invalid event, a state error).
	Errored Status = "error"
)

// TestResult is the result of one test.
type TestResult struct {
	File     string
	Name     string
	Line     int
	Status   Status
	Duration time.Duration
	// Failures describe each unmet expectation, or the error.
	Failures []string
	// Happened is what the events did, one line per run, for failures.
	Happened string
}

// Text is the result's failure report: every failure, then what happened.
func (r *TestResult) Text() string {
	var b strings.Builder
	for _, f := range r.Failures {
		b.WriteString(f)
	}
	if r.Happened != "" {
		b.WriteString("what happened:\n")
		b.WriteString(r.Happened)
	}
	return b.String()
}

// FileResult is the results of one test file.
type FileResult struct {
	Path string
	// Err is set when the file could not be parsed or its rules not loaded:
	// none of its tests ran.
	Err   error
	Tests []*TestResult
}

// TestReport is the result of RunTests.
type TestReport struct {
	Files []*FileResult
	// Coverage has one entry per distinct rule set (rules and schema).
	Coverage []*Coverage
	// NotSelected counts the tests Run left out.
	NotSelected int
	// UnknownFields are the record fields the events carry that the
	// schema does not declare (dropped), each where it was first seen.
	UnknownFields []UnknownFieldNote
}

// Counts returns how many tests passed, failed and errored; files that
// could not run count as errored.
func (r *TestReport) Counts() (passed, failed, errored int) {
	for _, f := range r.Files {
		if f.Err != nil {
			errored++
		}
		for _, t := range f.Tests {
			switch t.Status {
			case Passed:
				passed++
			case Failed:
				failed++
			default:
				errored++
			}
		}
	}
	return
}

// OK tells whether every file ran and every test passed.
func (r *TestReport) OK() bool {
	_, failed, errored := r.Counts()
	return failed == 0 && errored == 0
}

// WriteText prints a line per failing test with its report (and, with
// verbose, a line per passing one), the totals, and the coverage.
func (r *TestReport) WriteText(w io.Writer, verbose bool) {
	for _, f := range r.Files {
		if f.Err != nil {
			fmt.Fprintf(w, "ERROR %s:\n%s\n", f.Path, indent(f.Err.Error(), "    "))
			continue
		}
		for _, t := range f.Tests {
			switch {
			case t.Status == Passed && verbose:
				fmt.Fprintf(w, "ok    %s (%s:%d)\n", t.Name, t.File, t.Line)
			case t.Status == Failed:
				fmt.Fprintf(w, "FAIL  %s (%s:%d)\n%s", t.Name, t.File, t.Line, indent(t.Text(), "    "))
			case t.Status == Errored:
				fmt.Fprintf(w, "ERROR %s (%s:%d)\n%s", t.Name, t.File, t.Line, indent(t.Text(), "    "))
			}
		}
	}
	passed, failed, errored := r.Counts()
	fmt.Fprintf(w, "%d passed, %d failed", passed, failed)
	if errored > 0 {
		fmt.Fprintf(w, ", %d %s", errored, plural(errored, "error"))
	}
	if r.NotSelected > 0 {
		fmt.Fprintf(w, " (%d not selected by --run)", r.NotSelected)
	}
	fmt.Fprintln(w)
	for _, c := range r.Coverage {
		c.WriteText(w)
	}
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l == "" {
			continue
		}
		if l != "\n" {
			b.WriteString(prefix)
		}
		b.WriteString(l)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	return b.String()
}

// ruleEnv is a loaded rule set shared by the test files that name it.
type ruleEnv struct {
	compiler *rules.Compiler
	set      *rules.Set
	// dec and file are those of the test file whose tests run: RunTests
	// sets them (a decoder is the file's, the rules may be shared).
	dec     ingest.Decoder
	file    string
	clauses *clauseCache
	cov     *Coverage
	unknown *UnknownFields
	err     error
}

// RunTests runs the test files at paths, in order, each test on fresh
// in-memory state. Files naming the same rules and schema share one rule
// set, and one coverage.
func RunTests(ctx context.Context, paths []string, opts TestOptions) *TestReport {
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	rep := &TestReport{}
	envs := map[string]*ruleEnv{}
	unknown := &UnknownFields{}
	defer func() { rep.UnknownFields = unknown.Notes() }()
	for _, path := range paths {
		fr := &FileResult{Path: path}
		rep.Files = append(rep.Files, fr)
		tf, err := LoadTestFile(path)
		if err != nil {
			fr.Err = err
			continue
		}
		key := ruleKey(tf)
		env, ok := envs[key]
		if !ok {
			env = loadRuleEnv(tf)
			envs[key] = env
			if env.cov != nil {
				rep.Coverage = append(rep.Coverage, env.cov)
			}
		}
		if env.err != nil {
			fr.Err = fmt.Errorf("rules: %w", env.err)
			continue
		}
		if env.dec, err = tf.Decoder.newDecoder(env.compiler.Schema(), env.compiler.Limits(), unknown.Observe); err != nil {
			fr.Err = err
			continue
		}
		env.file, env.unknown = path, unknown
		for _, t := range tf.Tests {
			if opts.Run != nil && !opts.Run.MatchString(t.Name) {
				rep.NotSelected++
				continue
			}
			start := time.Now()
			res := env.run(ctx, t, opts.Logger)
			res.File, res.Name, res.Line = path, t.Name, t.Line
			res.Duration = time.Since(start)
			fr.Tests = append(fr.Tests, res)
		}
	}
	return rep
}

func ruleKey(tf *TestFile) string {
	var parts []string
	for _, p := range tf.Rules {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		parts = append(parts, p)
	}
	schema := tf.Schema
	if abs, err := filepath.Abs(schema); err == nil && schema != "" {
		schema = abs
	}
	return strings.Join(parts, "\x00") + "\x00schema=" + schema
}

func loadRuleEnv(tf *TestFile) *ruleEnv {
	env := &ruleEnv{}
	schema := crm.DefaultSchema()
	if tf.Schema != "" {
		s, err := crm.LoadSchema(tf.Schema)
		if err != nil {
			env.err = err
			return env
		}
		schema = s
	}
	c, err := rules.NewCompiler(rules.CompilerOptions{Schema: schema})
	if err != nil {
		env.err = err
		return env
	}
	srcs, err := rules.ReadFiles(tf.Rules...)
	if err != nil {
		env.err = err
		return env
	}
	set, err := c.Compile(srcs)
	if err != nil {
		env.err = err
		return env
	}
	env.compiler, env.set = c, set
	env.clauses = newClauseCache(c)
	env.cov = newCoverage(tf.Rules, set, env.clauses)
	return env
}

// run runs one test on fresh state.
func (env *ruleEnv) run(ctx context.Context, t *Test, log *slog.Logger) *TestResult {
	res := &TestResult{Status: Passed}
	fail := func(status Status, format string, args ...any) *TestResult {
		res.Status = status
		res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
		return res
	}
	events := make([]*engine.Event, len(t.Events))
	for i, src := range t.Events {
		env.unknown.Where = fmt.Sprintf("%s:%d", env.file, src.Line)
		ev, err := env.dec.Decode(nil, src.JSON)
		if err != nil {
			fail(Errored, "event %d (line %d) is not a valid event: %s: %s\n", i+1, src.Line, ingest.Reason(err), ingest.Detail(err))
			continue
		}
		events[i] = ev
	}
	if res.Status != Passed {
		return res
	}
	replay, err := newReplay(env.set, env.compiler.Schema(), log)
	if err != nil {
		return fail(Errored, "%v\n", err)
	}
	var outs []*engine.Output
	var happened strings.Builder
	for i, ev := range events {
		if err := env.observeDue(ctx, replay, ev.Time); err != nil {
			return fail(Errored, "event %d (line %d): %v\n", i+1, t.Events[i].Line, err)
		}
		if err := env.observeEvent(ctx, replay, ev); err != nil {
			return fail(Errored, "event %d (line %d): %v\n", i+1, t.Events[i].Line, err)
		}
		o, err := replay.Event(ctx, ev)
		outs = append(outs, o...)
		writeHappened(&happened, ev, o)
		if err != nil {
			return fail(Errored, "event %d (line %d): %v\n", i+1, t.Events[i].Line, err)
		}
	}
	if !t.Until.IsZero() {
		if err := env.observeDue(ctx, replay, t.Until); err != nil {
			return fail(Errored, "until: %v\n", err)
		}
		o, err := replay.Until(ctx, t.Until)
		outs = append(outs, o...)
		writeHappened(&happened, nil, o)
		if err != nil {
			return fail(Errored, "until: %v\n", err)
		}
	}
	var acts, runs []map[string]any
	for _, o := range outs {
		for i := range o.Actions {
			acts = append(acts, actionMap(&o.Actions[i]))
		}
		for i := range o.Runs {
			runs = append(runs, runMap(&o.Runs[i]))
			env.cov.ran(o.Runs[i].AutomationID)
		}
	}
	fails := compare("action", t.Expect.Actions, acts, t.Expect.OnlyListedActions, renderAction)
	fails = append(fails, compare("run", t.Expect.Runs, runs, t.Expect.OnlyListedRuns, renderRun)...)
	if len(fails) > 0 {
		res.Status = Failed
		res.Failures = fails
		res.Happened = happened.String()
	}
	return res
}

// observeEvent records the clause values of the automations whose
// trigger takes ev, as the event binds them before it is processed.
func (env *ruleEnv) observeEvent(ctx context.Context, r *engine.Replay, ev *engine.Event) error {
	if ev.Type == engine.TypeRecordDeleted {
		return nil
	}
	var bd *engine.Bindings
	for _, a := range env.set.Automations {
		if !a.Enabled || a.If == nil {
			continue
		}
		if ok, _ := triggerMatch(a, ev); !ok {
			continue
		}
		if bd == nil {
			var err error
			if bd, err = r.Engine().Bind(ctx, ev); err != nil {
				return err
			}
			if bd.Stale {
				return nil
			}
		}
		env.cov.observe(ctx, env.clauses, a, bd.Vars)
	}
	return nil
}

// observeDue records the clause values of the date timers and schedule
// ticks due by upTo.
func (env *ruleEnv) observeDue(ctx context.Context, r *engine.Replay, upTo time.Time) error {
	due, err := r.Engine().BindDue(ctx, upTo)
	if err != nil {
		return err
	}
	ticks, err := r.Engine().BindTicks(ctx, upTo)
	if err != nil {
		return err
	}
	for _, d := range append(due, ticks...) {
		env.cov.observe(ctx, env.clauses, d.Automation, d.Vars)
	}
	return nil
}

// actionMap and runMap are the records' JSON, decoded.
func actionMap(a *actions.Action) map[string]any {
	v, _ := decodeJSON(a.AppendJSON(nil))
	m, _ := v.(map[string]any)
	return m
}

func runMap(r *actions.Run) map[string]any {
	v, _ := decodeJSON(r.AppendJSON(nil))
	m, _ := v.(map[string]any)
	return m
}

// renderAction and renderRun are a record's JSON without its ids and
// times, keys in record order.
func renderAction(m map[string]any) string {
	return renderFields(m, "automation_id", "type", "brief", "flow", "object", "record_id", "event_id")
}

func renderRun(m map[string]any) string {
	return renderFields(m, "automation_id", "trigger", "event_id", "object", "record_id", "outcome", "reason", "error")
}

func renderFields(m map[string]any, keys ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for _, k := range keys {
		v, ok := m[k]
		if !ok || (k == "reason" && v == "") {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteString(compactJSON(k))
		b.WriteByte(':')
		b.WriteString(compactJSON(v))
	}
	b.WriteByte('}')
	return b.String()
}

// firingLine says what fired a run of no event: a date timer at its due
// time (and how late, when it caught up), or a schedule's tick.
func firingLine(r *actions.Run) string {
	c := r.Context
	switch {
	case c != nil && c.Schedule != nil:
		return fmt.Sprintf("  tick %s at %s for %s %s:\n", r.AutomationID, c.Schedule.Tick.UTC().Format(time.RFC3339), r.Object, r.RecordID)
	case c != nil && c.Timer != nil:
		late := ""
		if c.Timer.LateMS > 0 {
			late = ", caught up " + (time.Duration(c.Timer.LateMS) * time.Millisecond).String() + " late"
		}
		return fmt.Sprintf("  timer %s due %s for %s %s%s:\n", r.AutomationID, c.Timer.Due.UTC().Format(time.RFC3339), r.Object, r.RecordID, late)
	}
	return fmt.Sprintf("  timer %s at %s for %s %s:\n", r.AutomationID, r.RanAt.UTC().Format(time.RFC3339), r.Object, r.RecordID)
}

// writeHappened appends what one replay step did: the event (nil for the
// final timers), then each run and its actions. Timer firings get a line
// of their own.
func writeHappened(b *strings.Builder, ev *engine.Event, outs []*engine.Output) {
	var evRuns []actions.Run
	acts := map[string]*actions.Action{}
	for _, o := range outs {
		for i := range o.Actions {
			acts[o.Actions[i].ActionID] = &o.Actions[i]
		}
	}
	for _, o := range outs {
		for _, r := range o.Runs {
			if ev != nil && r.EventID == ev.ID {
				evRuns = append(evRuns, r)
				continue
			}
			b.WriteString(firingLine(&r))
			b.WriteString(runLine(&r, acts))
		}
	}
	if ev == nil {
		return
	}
	fmt.Fprintf(b, "  %s %s", ev.ID, ev.Type)
	switch {
	case ev.Record != nil:
		fmt.Fprintf(b, " %s %s", ev.Object, ev.RecordID())
	case ev.Tracker != nil:
		fmt.Fprintf(b, " %q", ev.Tracker.String("name"))
	}
	fmt.Fprintf(b, " at %s:", ev.Time.UTC().Format(time.RFC3339))
	if len(evRuns) == 0 {
		b.WriteString(" no automation ran\n")
		return
	}
	b.WriteByte('\n')
	for i := range evRuns {
		b.WriteString(runLine(&evRuns[i], acts))
	}
}

// runLine is a run and what it did, indented under its event.
func runLine(r *actions.Run, acts map[string]*actions.Action) string {
	s := fmt.Sprintf("    %s: %s", r.AutomationID, r.Outcome)
	switch r.Outcome {
	case actions.OutcomeSkipped:
		s += " (" + r.Reason + ")"
	case actions.OutcomeError:
		s += " (" + r.Reason + "): " + r.Error
	}
	var what []string
	for _, id := range r.ActionIDs {
		if a := acts[id]; a != nil {
			what = append(what, actionText(a))
		}
	}
	if len(what) > 0 {
		s += ", " + strings.Join(what, "; ")
	}
	return s + "\n"
}

// actionText is an action in words: "brief to user:u-1, user:u-42" or
// "flow expansion-outreach for c-1".
func actionText(a *actions.Action) string {
	switch {
	case a.Brief != nil:
		return "brief to " + strings.Join(a.Brief.Recipients, ", ")
	case a.Flow != nil:
		return "flow " + a.Flow.ID + " for " + a.Flow.PersonID
	}
	return a.Type
}
