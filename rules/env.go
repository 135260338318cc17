package rules

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/rules/internal/celfast"
)

// CEL variable names (docs/rules.md, section 5).
const (
	VarRecord      = "record"
	VarBefore      = "before"
	VarChanged     = "changed"
	VarAccount     = "account"
	VarOpportunity = "opportunity"
	VarTracker     = "tracker"
	VarCall        = "call"
	VarEvent       = "event"
	VarNow         = "now"
)

// CompilerOptions configures a Compiler.
type CompilerOptions struct {
	// Schema types the records; default DefaultSchema().
	Schema *crm.Schema
	// Limits caps event values; the cost estimate of every expression
	// assumes them. Default DefaultLimits.
	Limits crm.Limits
	// CostLimit is the runtime cost limit of one evaluation, and the most an
	// expression's estimated worst-case cost may be when it loads.
	// Default 1,000,000 (as Kubernetes).
	CostLimit uint64
	// InterruptCheckFrequency is how many comprehension iterations run
	// between checks of the evaluation context. Default 100.
	InterruptCheckFrequency uint
}

// Compiler type-checks and compiles CEL expressions against a schema. It
// builds one CEL environment, extends it once per trigger shape, and caches
// programs so that identical expressions share one compiled program, across
// files and across reloads. It is safe for concurrent use.
type Compiler struct {
	schema *crm.Schema
	limits crm.Limits
	opts   CompilerOptions
	envs   map[string]*cel.Env

	// shapes are checked ASTs that expressions differing only in their
	// literals share (shape.go).
	shapes shapes

	mu    sync.Mutex
	cache map[progKey]*cacheEntry
	gen   uint64

	// testFlipLess makes the fast evaluator build < as <=: a deliberately
	// wrong evaluator, which the differential tests must catch.
	testFlipLess bool
}

type progKey struct {
	env  string
	kind progKind
	expr string
}

type progKind uint8

const (
	kindCondition progKind = iota + 1
	kindWho
)

type cacheEntry struct {
	cond *Condition
	prog *Program
	err  []*celIssue
	gen  uint64
}

// NewCompiler builds the CEL environments.
func NewCompiler(opts CompilerOptions) (*Compiler, error) {
	if opts.Schema == nil {
		opts.Schema = crm.DefaultSchema()
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.CostLimit == 0 {
		opts.CostLimit = 1_000_000
	}
	if opts.InterruptCheckFrequency == 0 {
		opts.InterruptCheckFrequency = 100
	}
	s := opts.Schema
	p, err := crm.NewTypeProvider(s)
	if err != nil {
		return nil, err
	}
	base, err := cel.NewEnv(
		cel.CustomTypeProvider(p),
		cel.CustomTypeAdapter(p),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		ext.Lists(),
		ext.Sets(),
		ext.Math(),
		cel.Variable(VarAccount, stdObject(s, crm.ObjAccount).CELType()),
		cel.Variable(VarOpportunity, stdObject(s, crm.ObjOpportunity).CELType()),
		cel.Variable(VarEvent, s.Event.CELType()),
		cel.Variable(VarNow, types.TimestampType),
	)
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	c := &Compiler{schema: s, limits: opts.Limits, opts: opts, envs: map[string]*cel.Env{}, cache: map[progKey]*cacheEntry{}}
	for _, name := range crm.CRMObjects {
		t := stdObject(s, name).CELType()
		rec, err := base.Extend(
			cel.Variable(VarRecord, t),
			cel.Variable(VarBefore, t),
			cel.Variable(VarChanged, types.NewListType(types.StringType)),
		)
		if err != nil {
			return nil, fmt.Errorf("build CEL environment: %w", err)
		}
		c.envs[envKey(TriggerRecord, name)] = rec
		state, err := base.Extend(cel.Variable(VarRecord, t))
		if err != nil {
			return nil, fmt.Errorf("build CEL environment: %w", err)
		}
		c.envs[envKey(TriggerDate, name)] = state
	}
	tr, err := base.Extend(cel.Variable(VarTracker, s.Tracker.CELType()))
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	c.envs[envKey(TriggerTracker, "")] = tr
	call, err := base.Extend(cel.Variable(VarCall, s.Call.CELType()))
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	c.envs[envKey(TriggerCall, "")] = call
	return c, nil
}

// Schema is the compiler's schema.
func (c *Compiler) Schema() *crm.Schema { return c.schema }

// Limits are the event value limits the compiler's estimates assume.
func (c *Compiler) Limits() crm.Limits { return c.limits }

// envKey names the environment of a trigger: record triggers see before
// and changed; date and schedule triggers see the record only; tracker
// triggers see the tracker, call triggers the call.
func envKey(k TriggerKind, object string) string {
	switch k {
	case TriggerRecord:
		return "record:" + object
	case TriggerDate, TriggerSchedule:
		return "state:" + object
	case TriggerCall:
		return "call"
	}
	return "tracker"
}

// Program is a compiled, type-checked CEL expression.
//
// An expression inside the common subset of CEL that internal/celfast evaluates
// (field comparisons, `in`, string tests, logic) is evaluated by a tree of
// Go closures; cel-go plans it only when it is needed (EvalCEL, or a value
// the fast evaluator does not handle), from the expression text. Other
// expressions are planned by cel-go when they load. Programs keep neither
// the checked AST nor its source info.
type Program struct {
	Expr string
	// Type is the expression's output type.
	Type *types.Type
	// Cost is the estimated worst-case cost.
	Cost uint64

	fast    celfast.Func // nil when the expression is outside the fast subset
	related Related      // the related records it reads
	c       *Compiler    // plans the cel-go program, in the environment of key
	key     string
	once    sync.Once
	prg     cel.Program
	err     error // of a lazy plan
}

// Eval evaluates the program. A non-nil error is an evaluation error:
// cost limit, overflow, division by zero, or cancellation. The result is
// the one cel-go gives: the fast evaluator hands anything it does not
// handle (an error, an unexpected value) to cel-go.
func (p *Program) Eval(ctx context.Context, act interpreter.Activation) (ref.Val, error) {
	if p.fast != nil && act != nil {
		if v, ok := p.fast(act); ok {
			return v, nil
		}
	}
	return p.EvalCEL(ctx, act)
}

// EvalCEL evaluates the program with cel-go, whether or not it is fast:
// the reference the fast evaluator is tested against, and the baseline of
// benchmarks. The cost limit and interrupt checks apply.
func (p *Program) EvalCEL(ctx context.Context, act interpreter.Activation) (ref.Val, error) {
	prg, err := p.celProgram()
	if err != nil {
		return nil, err
	}
	v, _, err := prg.ContextEval(ctx, act)
	if err != nil {
		return nil, err
	}
	if types.IsError(v) {
		if e, ok := v.Value().(error); ok {
			return nil, e
		}
		return nil, errors.New(fmt.Sprint(v))
	}
	return v, nil
}

// Related tells which related records (account, opportunity) a program
// reads: the engine looks them up only for automations that do.
type Related uint8

// Related records.
const (
	RelatedAccount Related = 1 << iota
	RelatedOpportunity
)

// Related is the related records the program reads.
func (p *Program) Related() Related { return p.related }

// Fast tells whether the program has a fast evaluator: Eval then runs
// cel-go only for values the fast evaluator does not handle.
func (p *Program) Fast() bool { return p.fast != nil }

// Plan plans the cel-go program now rather than on its first use (it is
// planned once): benchmarks warm their cel-go baseline with it, so that
// what they time is evaluation, not planning.
func (p *Program) Plan() error {
	_, err := p.celProgram()
	return err
}

// celProgram returns the cel-go program, planning it on first use.
func (p *Program) celProgram() (cel.Program, error) {
	p.once.Do(func() {
		if p.prg != nil {
			return
		}
		checked, iss := p.c.check(p.key, p.Expr)
		if iss != nil && iss.Err() != nil {
			p.err = fmt.Errorf("plan %q: %w", p.Expr, iss.Err())
			return
		}
		p.prg, p.err = p.c.plan(p.key, checked)
	})
	return p.prg, p.err
}

// AST checks the expression again (programs do not keep their ASTs),
// from its shape's template when the compiler has one: the template's
// source offsets are then those of the first expression of the shape,
// in the same order. It returns nil if that fails, which it does not for
// an expression that compiled.
func (p *Program) AST() *ast.AST {
	checked, iss, err := p.c.checkShaped(p.key, p.Expr)
	if err != nil || iss != nil && iss.Err() != nil {
		return nil
	}
	return checked.native
}

// celIssue is a CEL error at a position within the expression.
type celIssue struct {
	line, col int // 1-based line, 0-based column within the expression; 0 line when unknown
	msg       string
}

// checkedExpr is a checked expression and its estimated cost.
type checkedExpr struct {
	native *ast.AST
	// cel is the cel-go form, nil when the expression was built from a
	// shape template (planning it then needs a full check).
	cel *cel.Ast
	est cost.Estimate
}

// checkShaped checks expr, from the template of its shape when the
// compiler has one (shape.go), and estimates its cost.
func (c *Compiler) checkShaped(key, expr string) (*checkedExpr, *cel.Issues, error) {
	shape, toks, shaped := shapeOf(expr)
	shaped = shaped && len(toks) > 0
	sk := shapeKey{key, shape}
	if shaped {
		if t, seen := c.shapes.get(sk); seen {
			if t == nil {
				shaped = false // not a shape templates can serve
			} else if native, ok := t.instance(toks); ok {
				c.shapes.hits.Add(1)
				return &checkedExpr{native: native, est: t.est}, nil, nil
			}
		}
	}
	checked, iss := c.check(key, expr)
	if iss != nil && iss.Err() != nil {
		return nil, iss, nil
	}
	est, err := c.envs[key].EstimateCost(checked, &sizeEstimator{lim: c.limits, schema: c.schema})
	if err != nil {
		return nil, nil, err
	}
	if shaped {
		c.shapes.put(sk, newShapeTemplate(checked.NativeRep(), toks, est))
	}
	return &checkedExpr{native: checked.NativeRep(), cel: checked, est: est}, nil, nil
}

// check parses expr, widens its integer literals and type-checks it in
// the environment of key, in full (no shape template).
func (c *Compiler) check(key, expr string) (*cel.Ast, *cel.Issues) {
	env := c.envs[key]
	parsed, iss := env.Parse(expr)
	if iss != nil && iss.Err() != nil {
		return nil, iss
	}
	c.widenIntLiterals(parsed, key)
	return env.Check(parsed)
}

// plan builds the cel-go program of a checked expression.
func (c *Compiler) plan(key string, checked *cel.Ast) (cel.Program, error) {
	return c.envs[key].Program(checked,
		cel.CostLimit(c.opts.CostLimit),
		cel.InterruptCheckFrequency(c.opts.InterruptCheckFrequency),
		cel.EvalOptions(cel.OptOptimize),
	)
}

// compile type-checks expr in the environment of key, and builds its fast
// evaluator or else plans it. check is the required output type check. It
// also returns the checked AST, for analyze; the program does not keep it.
func (c *Compiler) compile(key string, expr string, check func(*types.Type) string) (*Program, *ast.AST, []*celIssue) {
	checked, iss, err := c.checkShaped(key, expr)
	if iss != nil && iss.Err() != nil {
		var out []*celIssue
		for _, e := range iss.Errors() {
			out = append(out, &celIssue{line: e.Location.Line(), col: e.Location.Column(), msg: e.Message})
		}
		return nil, nil, out
	}
	if err != nil {
		return nil, nil, []*celIssue{{msg: "cannot estimate cost: " + err.Error()}}
	}
	a := checked.native
	outType := a.GetType(a.Expr().ID())
	if msg := check(outType); msg != "" {
		return nil, nil, []*celIssue{{msg: msg}}
	}
	if iss := picklistIssues(a, c.schema); iss != nil { // picklist.go
		return nil, nil, iss
	}
	est := checked.est
	if est.Max > c.opts.CostLimit {
		what := fmt.Sprintf("%d", est.Max)
		if est.IsUnknown() || est.Max == ^uint64(0) {
			what = "unbounded"
		}
		return nil, nil, []*celIssue{{msg: fmt.Sprintf("estimated worst-case cost %s is over the limit of %d; bound the inputs it iterates over or simplify it", what, c.opts.CostLimit)}}
	}
	p := &Program{Expr: expr, Type: outType, Cost: est.Max, c: c, key: key}
	for _, r := range a.ReferenceMap() {
		switch r.Name {
		case VarAccount:
			p.related |= RelatedAccount
		case VarOpportunity:
			p.related |= RelatedOpportunity
		}
	}
	p.fast = celfast.Build(a, celfast.Options{Schema: c.schema, MaxString: c.limits.MaxStringBytes, MaxList: c.limits.MaxListLen,
		Changed: VarChanged, MaxChanged: maxChanged(c.schema), FlipLess: c.testFlipLess})
	if p.fast == nil {
		ca := checked.cel
		if ca == nil {
			var iss *cel.Issues
			if ca, iss = c.check(key, expr); iss != nil && iss.Err() != nil {
				return nil, nil, []*celIssue{{msg: iss.Err().Error()}}
			}
		}
		prg, err := c.plan(key, ca)
		if err != nil {
			return nil, nil, []*celIssue{{msg: err.Error()}}
		}
		p.prg = prg
	}
	return p, a, nil
}

// sizeEstimator bounds the sizes of event values by the decode limits, so
// that iterating over a list field has a finite estimated cost.
type sizeEstimator struct {
	lim    crm.Limits
	schema *crm.Schema
}

func (e *sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	t := n.Type()
	if path[0] == VarChanged && len(path) == 1 {
		return &cost.SizeEstimate{Min: 0, Max: uint64(maxChanged(e.schema))}
	}
	switch t.Kind() {
	case types.StringKind, types.BytesKind:
		return &cost.SizeEstimate{Min: 0, Max: uint64(e.lim.MaxStringBytes)}
	case types.ListKind:
		return &cost.SizeEstimate{Min: 0, Max: uint64(e.lim.MaxListLen)}
	case types.MapKind:
		return &cost.SizeEstimate{Min: 0, Max: uint64(e.lim.MaxMapEntries)}
	}
	return nil
}

// maxChanged is the most names the changed list can hold: the fields of
// the largest object.
func maxChanged(s *crm.Schema) int {
	max := 0
	for _, name := range crm.CRMObjects {
		if o := stdObject(s, name); len(o.Fields) > max {
			max = len(o.Fields)
		}
	}
	return max
}

func (e *sizeEstimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}

// stdObject is one of the schema's CRM objects (account, opportunity,
// lead, contact), which every schema has.
func stdObject(s *crm.Schema, name string) *crm.Object {
	o, ok := s.Object(name)
	if !ok {
		panic("rules: schema has no object " + name)
	}
	return o
}
