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
)

// CEL variable names (SPEC section 3).
const (
	VarRecord      = "record"
	VarBefore      = "before"
	VarChanged     = "changed"
	VarAccount     = "account"
	VarOpportunity = "opportunity"
	VarTracker     = "tracker"
	VarEvent       = "event"
	VarNow         = "now"
)

// CompilerOptions configures a Compiler.
type CompilerOptions struct {
	// Schema types the records; default DefaultSchema().
	Schema *Schema
	// Limits caps event values; the cost estimate of every expression
	// assumes them. Default DefaultLimits.
	Limits Limits
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
	schema *Schema
	limits Limits
	opts   CompilerOptions
	envs   map[string]*cel.Env

	mu    sync.Mutex
	cache map[progKey]*cacheEntry
	gen   uint64
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
		opts.Schema = DefaultSchema()
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.CostLimit == 0 {
		opts.CostLimit = 1_000_000
	}
	if opts.InterruptCheckFrequency == 0 {
		opts.InterruptCheckFrequency = 100
	}
	s := opts.Schema
	p, err := newProvider(s)
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
		cel.Variable(VarAccount, s.objects[ObjAccount].celType),
		cel.Variable(VarOpportunity, s.objects[ObjOpportunity].celType),
		cel.Variable(VarEvent, s.Event.celType),
		cel.Variable(VarNow, types.TimestampType),
	)
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	c := &Compiler{schema: s, limits: opts.Limits, opts: opts, envs: map[string]*cel.Env{}, cache: map[progKey]*cacheEntry{}}
	for _, name := range CRMObjects {
		t := s.objects[name].celType
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
	tr, err := base.Extend(cel.Variable(VarTracker, s.Tracker.celType))
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	c.envs[envKey(TriggerTracker, "")] = tr
	return c, nil
}

// Schema is the compiler's schema.
func (c *Compiler) Schema() *Schema { return c.schema }

// Limits are the event value limits the compiler's estimates assume.
func (c *Compiler) Limits() Limits { return c.limits }

// envKey names the environment of a trigger: record triggers see before
// and changed; date and schedule triggers see the record only; tracker
// triggers see the tracker.
func envKey(k TriggerKind, object string) string {
	switch k {
	case TriggerRecord:
		return "record:" + object
	case TriggerDate, TriggerSchedule:
		return "state:" + object
	}
	return "tracker"
}

// Program is a compiled, type-checked CEL expression.
type Program struct {
	Expr string
	// Type is the expression's output type.
	Type *types.Type
	// Cost is the estimated worst-case cost.
	Cost uint64
	ast  *cel.Ast
	prg  cel.Program
}

// Eval evaluates the program. A non-nil error is an evaluation error:
// cost limit, overflow, division by zero, or cancellation.
func (p *Program) Eval(ctx context.Context, act interpreter.Activation) (ref.Val, error) {
	v, _, err := p.prg.ContextEval(ctx, act)
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

// AST is the checked expression.
func (p *Program) AST() *ast.AST { return p.ast.NativeRep() }

// celIssue is a CEL error at a position within the expression.
type celIssue struct {
	line, col int // 1-based line, 0-based column within the expression; 0 line when unknown
	msg       string
}

// compile type-checks and plans expr in the environment of key. want is
// the required output type check.
func (c *Compiler) compile(key string, expr string, check func(*types.Type) string) (*Program, []*celIssue) {
	env := c.envs[key]
	parsed, iss := env.Parse(expr)
	if iss == nil || iss.Err() == nil {
		c.widenIntLiterals(parsed, key)
		var checked *cel.Ast
		checked, iss = env.Check(parsed)
		parsed = checked
	}
	checked := parsed
	if iss != nil && iss.Err() != nil {
		var out []*celIssue
		for _, e := range iss.Errors() {
			out = append(out, &celIssue{line: e.Location.Line(), col: e.Location.Column(), msg: e.Message})
		}
		return nil, out
	}
	if msg := check(checked.OutputType()); msg != "" {
		return nil, []*celIssue{{msg: msg}}
	}
	est, err := env.EstimateCost(checked, &sizeEstimator{lim: c.limits, schema: c.schema})
	if err != nil {
		return nil, []*celIssue{{msg: "cannot estimate cost: " + err.Error()}}
	}
	if est.Max > c.opts.CostLimit {
		what := fmt.Sprintf("%d", est.Max)
		if est.IsUnknown() || est.Max == ^uint64(0) {
			what = "unbounded"
		}
		return nil, []*celIssue{{msg: fmt.Sprintf("estimated worst-case cost %s is over the limit of %d; bound the inputs it iterates over or simplify it", what, c.opts.CostLimit)}}
	}
	prg, err := env.Program(checked,
		cel.CostLimit(c.opts.CostLimit),
		cel.InterruptCheckFrequency(c.opts.InterruptCheckFrequency),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, []*celIssue{{msg: err.Error()}}
	}
	return &Program{Expr: expr, Type: checked.OutputType(), Cost: est.Max, ast: checked, prg: prg}, nil
}

// sizeEstimator bounds the sizes of event values by the decode limits, so
// that iterating over a list field has a finite estimated cost.
type sizeEstimator struct {
	lim    Limits
	schema *Schema
}

func (e *sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	t := n.Type()
	if path[0] == VarChanged && len(path) == 1 {
		max := 0
		for _, o := range e.schema.objects {
			if len(o.Fields) > max {
				max = len(o.Fields)
			}
		}
		return &cost.SizeEstimate{Min: 0, Max: uint64(max)}
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

func (e *sizeEstimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}
