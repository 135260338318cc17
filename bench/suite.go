package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/whenthen/whenthen/bench/gen"
)

// The scenarios of the issue: 100, 1k and 10k automations in one
// workspace, and 100k over 1,000 workspaces; and 10k in one workspace
// whose conditions are not selective (an event matches tens of them).
var DefaultScenarios = []Scenario{{100, 1, false}, {1000, 1, false}, {10_000, 1, false}, {100_000, 1000, false}, {10_000, 1, true}}

// Options choose what Run measures. Zero values take the defaults given
// with each field; Quick changes some of them.
type Options struct {
	// Quick sizes everything to finish within about a minute and a half
	// on two cores: 20,000 events per scenario, 5s indexed, 2s naive and
	// 1s eval budgets, a 20,000-event e2e backlog and 5s of latency
	// measurement.
	Quick bool

	// Scenarios of the matching benchmark; default DefaultScenarios.
	// NoMatch skips it.
	Scenarios []Scenario
	NoMatch   bool
	// Events per scenario, distinct, run once through the indexed engine
	// (within IndexedBudget, default 60s) and from the first through the
	// naive one within NaiveBudget (default 10s); default 200,000.
	Events        int
	IndexedBudget time.Duration
	NaiveBudget   time.Duration
	// EvalBudget is how long each scenario runs its events, from the
	// first, through the offline path of `whenthen eval` (in-memory
	// store, one event at a time); default 5s, 1s with Quick; negative:
	// not at all.
	EvalBudget time.Duration
	// Batch is the events per Engine.Process call; default 500, the
	// service's batch.
	Batch int

	// E2E sizes the end-to-end benchmark; NoE2E skips it.
	E2E   E2EOptions
	NoE2E bool

	// Deliver sizes the delivery benchmark (deliver.go); NoDeliver skips it.
	Deliver   DeliverOptions
	NoDeliver bool
	// History, if set, runs the run history's benchmark (bench/history.go).
	History *HistoryOptions

	// Load is the rule set whose loading is measured in a fresh process;
	// default 100,000 automations over 1,000 workspaces. When a scenario
	// has the same size, its process's load is reported. NoLoad skips
	// it.
	Load   Scenario
	NoLoad bool

	// Seed of the generated workloads; default 1.
	Seed int64

	// RedisURL is the Redis to use; "" starts a redis-server from PATH on
	// a free port (the suite fails without one). Keys get a
	// fresh prefix and are deleted at the end.
	RedisURL string

	// Child starts a child process (`whenthen bench --child ...`), in
	// which each scenario, the service and each passthrough run
	// (required).
	Child ChildCommand

	// ProfileDir, if set, receives a CPU profile of every measured phase:
	// load-SCENARIO.pprof, match-SCENARIO-indexed.pprof,
	// match-SCENARIO-naive.pprof, eval-SCENARIO.pprof,
	// e2e-passthrough-kafka-go.pprof and e2e-passthrough-franz-go.pprof
	// (draining the backlog), e2e-service.pprof (the same),
	// e2e-service-latency.pprof
	// (at half rate); deliver-one.pprof, deliver-three-N.pprof,
	// deliver-slow-N.pprof (the delivery runs); and the heap once loaded,
	// load-SCENARIO-heap.pprof.
	// SCENARIO is e.g. 10k-1.
	ProfileDir string

	// Logger receives progress; default discards it. Stderr receives the
	// scenario processes' stderr; default discards it.
	Logger *slog.Logger
	Stderr io.Writer
}

func (o Options) withDefaults() (Options, error) {
	if o.Scenarios == nil {
		o.Scenarios = DefaultScenarios
	}
	if o.Events == 0 {
		o.Events = 200_000
		if o.Quick {
			o.Events = 20_000
		}
	}
	if o.IndexedBudget == 0 {
		o.IndexedBudget = 60 * time.Second
		if o.Quick {
			o.IndexedBudget = 5 * time.Second
		}
	}
	if o.NaiveBudget == 0 {
		o.NaiveBudget = 10 * time.Second
		if o.Quick {
			o.NaiveBudget = 2 * time.Second
		}
	}
	if o.EvalBudget == 0 {
		o.EvalBudget = 5 * time.Second
		if o.Quick {
			o.EvalBudget = time.Second
		}
	}
	if o.Batch == 0 {
		o.Batch = 500
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.E2E.Workload.Automations == 0 {
		o.E2E.Workload = gen.Workload{Automations: 1000, Workspaces: 1}
	}
	if o.E2E.Workload.Seed == 0 {
		o.E2E.Workload.Seed = o.Seed
	}
	if o.Quick {
		if o.E2E.Events == 0 {
			o.E2E.Events = 20_000
		}
		if o.E2E.Duration == 0 {
			o.E2E.Duration = 5 * time.Second
		}
	}
	o.E2E = o.E2E.withDefaults()
	if o.Load.Automations == 0 {
		o.Load = Scenario{Automations: 100_000, Workspaces: 1000}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if o.Events < 1 || o.Batch < 1 || o.IndexedBudget < 0 || o.NaiveBudget < 0 {
		errs = append(errs, fmt.Errorf("events %d, batch %d, budgets %v and %v: want positive values", o.Events, o.Batch, o.IndexedBudget, o.NaiveBudget))
	}
	if o.E2E.Events < 1 || o.E2E.Duration < 0 || o.E2E.Partitions < 1 {
		errs = append(errs, fmt.Errorf("e2e events %d, duration %v, partitions %d: want positive values", o.E2E.Events, o.E2E.Duration, o.E2E.Partitions))
	}
	if o.Child == nil {
		errs = append(errs, errors.New("Options.Child is required: the benchmarks run in processes of their own"))
	}
	return o, errors.Join(errs...)
}

// Results is one run of the suite.
type Results struct {
	Quick   bool    `json:"quick"`
	Machine Machine `json:"machine"`
	// Redis says which Redis the engine used.
	Redis string `json:"redis"`
	// PerCore explains the unit of the match rates.
	PerCore string           `json:"per_core"`
	Match   []ScenarioResult `json:"match,omitempty"`
	E2E     *E2EResult       `json:"e2e,omitempty"`
	Load    *LoadResult      `json:"load,omitempty"`
	Deliver *DeliverResult   `json:"deliver,omitempty"`
	History *HistoryResult   `json:"history,omitempty"`
	// Goals are the targets, for the parts that were run.
	Goals []Goal `json:"goals,omitempty"`
	// Seconds is how long the suite took.
	Seconds float64 `json:"seconds"`
}

// Machine describes where the suite ran.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemoryMB int    `json:"memory_mb"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	// LoadAverage is the 1-minute load average when the suite started.
	LoadAverage float64 `json:"load_average"`
}

// Goal is one target of the issue and whether the run reached it.
type Goal struct {
	Name   string  `json:"name"`
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
	// Shown marks a figure shown beside the goals, with no target of its
	// own; Met is then false.
	Shown bool `json:"shown,omitempty"`
}

const perCoreNote = "match rates are per core: Engine.Process runs a batch on one goroutine, so one engine's events/s is what one core does (indexed_cpu_cores shows the CPU the process used in all, garbage collection included)"

// Run runs the suite: the matching benchmark (each scenario in a process
// of its own), the loading benchmark, and the end-to-end one.
func Run(ctx context.Context, opts Options) (*Results, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	began := time.Now()
	res := &Results{Quick: o.Quick, Machine: machine(), PerCore: perCoreNote}
	log := o.Logger
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	r, err := startRedis(ctx, o.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer r.Close()
	res.Redis = r.Kind
	log.Info("redis", "kind", r.Kind)

	if !o.NoMatch {
		for _, sc := range o.Scenarios {
			log.Info("match: scenario", "scenario", sc.Name())
			cr, err := o.child(ctx, r, sc, o.Events)
			if err != nil {
				return nil, fmt.Errorf("bench: scenario %s: %w", sc.Name(), err)
			}
			res.Match = append(res.Match, *cr.Match)
			if !o.NoLoad && sc == o.Load && res.Load == nil {
				l := cr.Load
				res.Load = &l
			}
			log.Info("match: done", "scenario", sc.Name(), "indexed_events_per_sec", int(cr.Match.IndexedEventsPerSec),
				"naive_events_per_sec", int(cr.Match.NaiveEventsPerSec))
		}
	}
	if !o.NoLoad && res.Load == nil {
		log.Info("load", "automations", o.Load.Automations, "workspaces", o.Load.Workspaces)
		cr, err := o.child(ctx, r, o.Load, 0)
		if err != nil {
			return nil, fmt.Errorf("bench: load: %w", err)
		}
		res.Load = &cr.Load
	}
	if !o.NoE2E {
		if res.E2E, err = runE2E(ctx, o.E2E, r, o.Child, o.Stderr, log, o.ProfileDir); err != nil {
			return nil, fmt.Errorf("bench: e2e: %w", err)
		}
	}
	if !o.NoDeliver {
		if res.Deliver, err = runDeliver(ctx, o.Deliver, o.Quick, r, log, o.ProfileDir); err != nil {
			return nil, fmt.Errorf("bench: deliver: %w", err)
		}
	}
	if o.History != nil {
		if res.History, err = RunHistory(ctx, *o.History, log); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	res.Goals = goals(res)
	res.Seconds = time.Since(began).Seconds()
	return res, nil
}

// child runs scenario sc in a process of its own: the load, then events
// through the engine if events > 0.
func (o Options) child(ctx context.Context, r *benchRedis, sc Scenario, events int) (*childResult, error) {
	dir, err := os.MkdirTemp("", "whenthen-bench-rules-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	w := gen.Workload{Automations: sc.Automations, Workspaces: sc.Workspaces, Seed: o.Seed, Fanout: sc.Fanout}
	if err := w.WriteRules(dir); err != nil {
		return nil, err
	}
	return runInChild(ctx, o.Child, childRequest{
		Automations: sc.Automations, Workspaces: sc.Workspaces, Seed: o.Seed, Dir: dir, Fanout: sc.Fanout,
		Events: events, Batch: o.Batch, IndexedBudget: o.IndexedBudget, NaiveBudget: o.NaiveBudget, EvalBudget: max(0, o.EvalBudget),
		RedisURL: r.URL, RedisPID: r.PID, Prefix: r.Prefix + sc.fileName() + ":", ProfileDir: o.ProfileDir,
	}, o.Stderr)
}

// goals checks the results against the targets.
func goals(res *Results) []Goal {
	var out []Goal
	find := func(sc Scenario) *ScenarioResult {
		for i := range res.Match {
			if m := &res.Match[i]; m.Automations == sc.Automations && m.Workspaces == sc.Workspaces && m.Fanout == sc.Fanout {
				return m
			}
		}
		return nil
	}
	if m := find(Scenario{Automations: 10_000, Workspaces: 1}); m != nil {
		out = append(out,
			Goal{Name: "10k automations, 1 workspace: indexed vs every rule (cel-go, programs planned first), same run", Target: ">= 100x", Value: m.Speedup, Unit: "x", Met: m.Speedup >= 100},
			Goal{Name: "10k automations, 1 workspace: indexed events/s per core", Target: ">= 100000", Value: m.IndexedEventsPerSec, Unit: "events/s", Met: m.IndexedEventsPerSec >= 100_000})
		if m.EvalEvents > 0 {
			out = append(out, Goal{Name: "10k automations, 1 workspace: whenthen eval (in-memory store) events/s", Target: ">= 100000", Value: m.EvalEventsPerSec, Unit: "events/s", Met: m.EvalEventsPerSec >= 100_000})
		}
	}
	if m := find(Scenario{Automations: 100_000, Workspaces: 1000}); m != nil {
		out = append(out, Goal{Name: "100k automations, 1,000 workspaces: indexed events/s per core", Target: ">= 500000", Value: m.IndexedEventsPerSec, Unit: "events/s", Met: m.IndexedEventsPerSec >= 500_000})
		if m.IndexedRedisCPUCores > 0 {
			out = append(out, Goal{Name: "100k automations, 1,000 workspaces: Redis CPU per event", Target: "<= 2 µs", Value: m.RedisCPUMicrosPerEvent, Unit: "µs", Met: m.RedisCPUMicrosPerEvent <= 2})
		}
		if k := find(Scenario{Automations: 1000, Workspaces: 1}); k != nil && m.IndexedEventsPerSec > 0 {
			ratio := k.IndexedEventsPerSec / m.IndexedEventsPerSec
			out = append(out, Goal{Name: "100k automations, 1,000 workspaces: within 2x of 1k automations (1k rate / 100k rate)", Target: "<= 2", Value: ratio, Unit: "x", Met: ratio <= 2})
		}
	}
	if m := find(Scenario{Automations: 10_000, Workspaces: 1, Fanout: true}); m != nil && m.MatchedPerEvent > 0 {
		out = append(out, Goal{Name: "10k automations, not selective: engine + Redis CPU per matched automation", Target: "<= 3 µs", Value: m.MicrosPerMatched, Unit: "µs", Met: m.MicrosPerMatched <= 3})
	}
	if e := res.E2E; e != nil {
		out = append(out,
			Goal{Name: "end to end: share of the kafka-go passthrough (service's consumer and outputs)", Target: ">= 80%", Value: 100 * e.Ratio, Unit: "%", Met: e.Ratio >= 0.8},
			Goal{Name: "end to end: share of the franz-go passthrough (the ceiling)", Target: "none", Value: 100 * e.FranzRatio, Unit: "%", Shown: true},
			Goal{Name: "end to end: p99 event to action at half the maximum rate", Target: "<= 50 ms", Value: e.P99MS, Unit: "ms", Met: e.LatencySamples > 0 && e.P99MS <= 50})
	}
	if d := res.Deliver; d != nil {
		out = append(out, deliverGoals(d)...)
	}
	if res.History != nil {
		out = append(out, historyGoals(res.History)...)
	}
	if l := res.Load; l != nil && l.Automations >= 100_000 {
		out = append(out,
			Goal{Name: fmt.Sprintf("loading %s automations: time", count(l.Automations)), Target: "<= 2 s", Value: l.Seconds, Unit: "s", Met: l.Seconds <= 2},
			Goal{Name: fmt.Sprintf("loading %s automations: peak RSS", count(l.Automations)), Target: "<= 300 MiB", Value: l.RSSMB, Unit: "MiB", Met: l.RSSMB <= 300})
	}
	return out
}

// machine describes this machine.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					kb, _ := strconv.Atoi(fs[0])
					m.MemoryMB = kb >> 10
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if fs := strings.Fields(string(b)); len(fs) > 0 {
			m.LoadAverage, _ = strconv.ParseFloat(fs[0], 64)
		}
	}
	return m
}
