package rules

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/internal/yamlfile"
)

// Set is a loaded, valid set of automations.
type Set struct {
	// Automations in file order, then position order.
	Automations []*Automation
	// Files are the files loaded.
	Files []string
	byID  map[string]*Automation
	// compiler built the set; it compiles clauses on demand.
	compiler *Compiler
}

// ClausePrograms compiles each top-level clause of a's condition on its
// own, with the compiler that built the set (Compiler.ClausePrograms).
func (s *Set) ClausePrograms(a *Automation) ([]*Program, error) {
	return s.compiler.ClausePrograms(a)
}

// Automation returns the automation with that id.
func (s *Set) Automation(id string) (*Automation, bool) {
	a, ok := s.byID[id]
	return a, ok
}

// Summary counts a set's automations.
type Summary struct {
	Files       int            `json:"files"`
	Automations int            `json:"automations"`
	Enabled     int            `json:"enabled"`
	Disabled    int            `json:"disabled"` // enabled: false
	ByTrigger   map[string]int `json:"by_trigger"`
	Programs    int            `json:"programs"` // distinct compiled expressions
}

// Summary counts the set's automations by trigger kind.
func (s *Set) Summary() Summary {
	sum := Summary{Files: len(s.Files), Automations: len(s.Automations), ByTrigger: map[string]int{}}
	progs := map[*Program]bool{}
	for _, a := range s.Automations {
		sum.ByTrigger[a.Trigger.Kind.String()]++
		if a.Enabled {
			sum.Enabled++
		}
		if a.If != nil {
			progs[a.If.Program] = true
		}
		if a.Flow != nil && a.Flow.Who != nil {
			progs[a.Flow.Who] = true
		}
	}
	sum.Programs = len(progs)
	sum.Disabled = sum.Automations - sum.Enabled
	return sum
}

// String is a one-line summary: "3 files, 12 automations (record 7, date 2,
// ...)", and ", 2 disabled" when some are.
func (s Summary) String() string {
	var parts []string
	for _, k := range TriggerKinds {
		if n := s.ByTrigger[k.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	detail := ""
	if len(parts) > 0 {
		detail = " (" + strings.Join(parts, ", ") + ")"
	}
	out := fmt.Sprintf("%d %s, %d %s%s", s.Files, plural(s.Files, "file"), s.Automations, plural(s.Automations, "automation"), detail)
	if s.Disabled > 0 {
		out += fmt.Sprintf(", %d disabled", s.Disabled)
	}
	return out
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// Compile compiles automation files given as names and content (reading
// them is the caller's job: ReadFiles). The error, if any, is an ErrorList
// holding every problem of every file.
func (c *Compiler) Compile(srcs []Source) (*Set, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	var errs ErrorList
	set := &Set{byID: map[string]*Automation{}, compiler: c}
	// Files are taken in chunks of about loadChunkBytes: a chunk's files
	// parse on every core, its distinct expressions compile on every core,
	// then its automations are validated and settled in file order. The
	// YAML trees of a chunk are garbage once it is done, so memory peaks at
	// the rule set plus one chunk, not plus every file's parse.
	for start := 0; start < len(srcs); {
		end, size := start, 0
		for end < len(srcs) && (end == start || size+len(srcs[end].Data) <= loadChunkBytes) {
			size += len(srcs[end].Data)
			end++
		}
		errs = append(errs, c.loadChunk(srcs[start:end], set)...)
		start = end
	}
	c.prune()
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return set, nil
}

// loadChunkBytes is the YAML a load parses before compiling it.
const loadChunkBytes = 4 << 20

func (c *Compiler) loadChunk(srcs []Source, set *Set) ErrorList {
	var errs ErrorList
	fps := make([]*fileParser, len(srcs))
	parallel(len(srcs), func(i int) {
		src := srcs[i]
		fp := &fileParser{name: src.Name, schema: c.schema, lines: strings.Split(string(src.Data), "\n")}
		fps[i] = fp
		root, perr := yamlfile.Parse(src.Name, src.Data)
		if perr != nil {
			fp.errs = append(fp.errs, &Error{File: perr.File, Line: perr.Line, Col: perr.Col, Msg: perr.Msg})
			return
		}
		fp.parseFile(root)
	})
	var all []*parsed
	for i, fp := range fps {
		set.Files = append(set.Files, srcs[i].Name)
		errs = append(errs, fp.errs...)
		fp.errs = nil
		all = append(all, fp.out...)
	}
	c.precompile(all)
	for _, fp := range fps {
		for _, pa := range fp.out {
			c.validate(fp, pa, set)
			c.compileExprs(fp, pa)
			errs = append(errs, fp.errs...)
			fp.errs = nil
			set.Automations = append(set.Automations, pa.a)
		}
	}
	return errs
}

// prune drops cached programs the latest load did not use, so the cache
// holds what the live rule set needs (plus the previous set, which a
// failed reload keeps serving).
func (c *Compiler) prune() {
	for k, e := range c.cache {
		if e.gen+1 < c.gen {
			delete(c.cache, k)
		}
	}
}

// validate checks what spans automations: ids unique across the set.
func (c *Compiler) validate(fp *fileParser, pa *parsed, set *Set) {
	a := pa.a
	if a.ID == "" {
		return
	}
	if prev, dup := set.byID[a.ID]; dup {
		fp.errAt(pa.idNode, a.ID, "id %q is already used at %s:%d:%d", a.ID, prev.Pos.File, prev.Pos.Line, prev.Pos.Col)
	} else {
		set.byID[a.ID] = a
	}
}

// compileExprs compiles an automation's if and who and settles its fire mode.
func (c *Compiler) compileExprs(fp *fileParser, pa *parsed) {
	a := pa.a
	id := a.ID
	if id == "" {
		id = "?"
	}
	key, ok := exprEnv(a.Trigger)
	if !ok {
		return // the trigger is already reported; the environment is unknown
	}
	if pa.ifSrc != nil {
		a.If = c.condition(fp, key, pa.ifSrc, id, a.Trigger)
	}
	if pa.whoSrc != nil && a.Flow != nil {
		a.Flow.Who = c.who(fp, key, pa.whoSrc, id, a.Trigger)
	}
	// Fire mode: the parser checked the value; what is left needs the
	// compiled condition.
	switch {
	case pa.ifSrc == nil || a.Trigger.Kind != TriggerRecord:
		a.Fire = FireEveryTime
	case a.If != nil && (a.If.ReadsBefore || a.If.ReadsChanged):
		if pa.fire == FireOnEnter {
			fp.errAt(pa.fireN, id, "fire: on_enter is not allowed on a condition that reads before or changed (it already describes a change; remove fire or use every_time)")
		}
		a.Fire = FireEveryTime
	case pa.fire == FireEveryTime:
		a.Fire = FireEveryTime
	default:
		a.Fire = FireOnEnter
	}
}

func (c *Compiler) condition(fp *fileParser, key string, src *exprSrc, id string, t Trigger) *Condition {
	ck := progKey{env: key, kind: kindCondition, expr: src.text}
	e, ok := c.cache[ck]
	if !ok {
		e = c.conditionEntry(key, src.text, recordObject(t))
		c.cache[ck] = e
	}
	e.gen = c.gen
	if e.err != nil {
		c.report(fp, src, id, t, e.err)
	}
	return e.cond
}

// conditionEntry compiles and analyzes a condition. It is safe for
// concurrent use: precompile runs it on every core.
func (c *Compiler) conditionEntry(key, expr, recordObj string) *cacheEntry {
	prg, checked, iss := c.compile(key, expr, func(out *types.Type) string {
		if out.Kind() != types.BoolKind && out.Kind() != types.DynKind {
			return fmt.Sprintf("must be a bool expression, but it is of type %s", out)
		}
		return ""
	})
	e := &cacheEntry{err: iss}
	if prg != nil {
		e.cond = analyze(prg, checked, c.schema, recordObj)
	}
	return e
}

func (c *Compiler) who(fp *fileParser, key string, src *exprSrc, id string, t Trigger) *Program {
	ck := progKey{env: key, kind: kindWho, expr: src.text}
	e, ok := c.cache[ck]
	if !ok {
		e = c.whoEntry(key, src.text)
		c.cache[ck] = e
	}
	e.gen = c.gen
	if e.err != nil {
		c.report(fp, src, id, t, e.err)
	}
	return e.prog
}

// whoEntry compiles a flow's who. It is safe for concurrent use.
func (c *Compiler) whoEntry(key, expr string) *cacheEntry {
	prg, _, iss := c.compile(key, expr, func(out *types.Type) string {
		switch out.Kind() {
		case types.StringKind, types.DynKind:
			return ""
		case types.ListKind:
			if len(out.Parameters()) == 1 {
				switch out.Parameters()[0].Kind() {
				case types.StringKind, types.DynKind:
					return ""
				}
			}
		}
		return fmt.Sprintf("must give a string or a list(string), but it is of type %s", out)
	})
	return &cacheEntry{prog: prg, err: iss}
}

// precompile compiles, on every core, the conditions and whos of the
// parsed automations that the cache does not hold yet, and adds them to
// it; compileExprs then finds each in the cache and reports its errors
// in file order. Expressions are compiled once however many automations
// share them.
func (c *Compiler) precompile(all []*parsed) {
	type job struct {
		ck        progKey
		recordObj string
	}
	var jobs []job
	seen := map[progKey]bool{}
	add := func(ck progKey, recordObj string) {
		if _, ok := c.cache[ck]; ok || seen[ck] {
			return
		}
		seen[ck] = true
		jobs = append(jobs, job{ck, recordObj})
	}
	for _, pa := range all {
		t := pa.a.Trigger
		key, ok := exprEnv(t)
		if !ok {
			continue
		}
		if pa.ifSrc != nil {
			add(progKey{env: key, kind: kindCondition, expr: pa.ifSrc.text}, recordObject(t))
		}
		if pa.whoSrc != nil && pa.a.Flow != nil {
			add(progKey{env: key, kind: kindWho, expr: pa.whoSrc.text}, "")
		}
	}
	entries := make([]*cacheEntry, len(jobs))
	parallel(len(jobs), func(i int) {
		j := jobs[i]
		if j.ck.kind == kindCondition {
			entries[i] = c.conditionEntry(j.ck.env, j.ck.expr, j.recordObj)
		} else {
			entries[i] = c.whoEntry(j.ck.env, j.ck.expr)
		}
	})
	for i, j := range jobs {
		c.cache[j.ck] = entries[i]
	}
}

// exprEnv is the CEL environment of a trigger's expressions; false when
// the trigger is too broken to tell (its error is already reported).
func exprEnv(t Trigger) (string, bool) {
	if t.Kind == 0 || (t.Kind != TriggerTracker && t.Kind != TriggerCall && t.Object == "") {
		return "", false
	}
	return envKey(t.Kind, t.Object), true
}

func recordObject(t Trigger) string {
	if t.Kind == TriggerTracker || t.Kind == TriggerCall {
		return ""
	}
	return t.Object
}

// report adds CEL issues at their file positions, with a hint where a
// variable does not exist for the trigger.
func (c *Compiler) report(fp *fileParser, src *exprSrc, id string, t Trigger, iss []*celIssue) {
	what := "if"
	if src.node.Line != 0 && fp.isWho(src) {
		what = "then.flow.who"
	}
	for _, is := range iss {
		line, col := fp.position(src, is.line, is.col)
		msg := is.msg
		for _, v := range []string{VarBefore, VarChanged, VarRecord, VarTracker, VarCall} {
			if strings.Contains(msg, "undeclared reference to '"+v+"'") {
				msg += fmt.Sprintf(" (%s is not available to a %s trigger: %s)", v, t.Kind, availableVars(t.Kind))
			}
		}
		fp.errs = append(fp.errs, &Error{File: fp.name, Line: line, Col: col, AutomationID: id, Msg: what + ": " + msg})
	}
}

func (fp *fileParser) isWho(src *exprSrc) bool {
	for _, pa := range fp.out {
		if pa.whoSrc == src {
			return true
		}
	}
	return false
}

func availableVars(k TriggerKind) string {
	switch k {
	case TriggerRecord:
		return "record, before, changed, account, opportunity, event, now"
	case TriggerTracker:
		return "tracker, account, opportunity, event, now"
	case TriggerCall:
		return "call, account, opportunity, event, now"
	}
	return "record, account, opportunity, event, now"
}

// parallel calls fn(0) … fn(n-1) on GOMAXPROCS goroutines and waits for
// them all.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}
