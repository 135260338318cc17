package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/rules"
)

// Scenario is a matching workload: Automations spread over Workspaces;
// Fanout makes its conditions unselective (gen.Workload.Fanout).
type Scenario struct {
	Automations int
	Workspaces  int
	Fanout      bool
}

// fanoutSuffix ends the name of a fanout scenario: "10k/1-fanout".
const fanoutSuffix = "-fanout"

// Name is how a scenario is written: "10k/1" (automations/workspaces),
// "10k/1-fanout".
func (s Scenario) Name() string {
	n := count(s.Automations) + "/" + strconv.Itoa(s.Workspaces)
	if s.Fanout {
		n += fanoutSuffix
	}
	return n
}

// fileName is the scenario's name in a file name: "10k-1-fanout".
func (s Scenario) fileName() string { return strings.ReplaceAll(s.Name(), "/", "-") }

// count writes 1000 as 1k and 100000 as 100k.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// ParseScenario reads "AUTOMATIONS/WORKSPACES", where AUTOMATIONS may end
// in k or M: "10k/1", "100k/1000"; with "-fanout" after it, the workload
// whose events match tens of automations each: "10k/1-fanout".
func ParseScenario(s string) (Scenario, error) {
	body, fanout := strings.CutSuffix(s, fanoutSuffix)
	a, w, ok := strings.Cut(body, "/")
	if !ok {
		return Scenario{}, fmt.Errorf("scenario %q: want AUTOMATIONS/WORKSPACES, e.g. 10k/1", s)
	}
	n, err := parseCount(a)
	if err != nil || n < 1 {
		return Scenario{}, fmt.Errorf("scenario %q: automations %q: want a positive count such as 100, 1k or 100k", s, a)
	}
	ws, err := strconv.Atoi(w)
	if err != nil || ws < 1 || ws > n {
		return Scenario{}, fmt.Errorf("scenario %q: workspaces %q: want 1 to the number of automations", s, w)
	}
	return Scenario{Automations: n, Workspaces: ws, Fanout: fanout}, nil
}

func parseCount(s string) (int, error) {
	mul := 1
	switch {
	case strings.HasSuffix(s, "k"):
		mul, s = 1000, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mul, s = 1_000_000, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	return n * mul, err
}

// ScenarioResult is the engine alone on one scenario, in one process:
// events/s through Engine.Process and Commit (batches of 500, state in
// Redis), with the index and with every rule evaluated, on the same
// events. The engine processes a batch on one goroutine, so events/s is
// per core.
type ScenarioResult struct {
	Name        string `json:"name"`
	Automations int    `json:"automations"`
	Workspaces  int    `json:"workspaces"`
	// Fanout tells the unselective workload (gen.Workload.Fanout).
	Fanout bool `json:"fanout,omitempty"`
	// Events is how many events the indexed run processed (distinct
	// events, no repeats).
	Events              int     `json:"events"`
	IndexedEventsPerSec float64 `json:"indexed_events_per_sec"`
	// IndexedCPUCores is the process's CPU time over wall time during
	// the indexed run: under 1 while the engine waits for Redis, over 1
	// when the garbage collector runs on another core. (redis-server's
	// CPU is not counted.)
	IndexedCPUCores float64 `json:"indexed_cpu_cores"`
	// IndexedEventsPerCPUSec is events per second of the process's CPU
	// time: IndexedEventsPerSec / IndexedCPUCores.
	IndexedEventsPerCPUSec float64 `json:"indexed_events_per_cpu_sec"`
	// IndexedRedisCPUCores is redis-server's CPU time over wall time
	// during the indexed run; 0 when the suite did not start it.
	IndexedRedisCPUCores float64 `json:"indexed_redis_cpu_cores,omitempty"`
	// NaiveEvents is how many of the same events (from the first) the
	// run evaluating every rule processed within its time budget.
	NaiveEvents       int     `json:"naive_events"`
	NaiveEventsPerSec float64 `json:"naive_events_per_sec"`
	// Speedup is IndexedEventsPerSec / NaiveEventsPerSec.
	Speedup float64 `json:"speedup"`
	// IndexedCandidatesPerEvent and NaiveCandidatesPerEvent are the
	// automations whose condition each run evaluated per event (the
	// engine's whenthen_automations_evaluated_total).
	IndexedCandidatesPerEvent float64 `json:"indexed_candidates_per_event"`
	NaiveCandidatesPerEvent   float64 `json:"naive_candidates_per_event"`
	// IndexedEvalShare is the share of the indexed run's time spent
	// finding and evaluating candidates (whenthen_eval_duration_seconds);
	// the rest is decoding and encoding record state, Redis round trips,
	// dedup and building outputs.
	IndexedEvalShare float64 `json:"indexed_eval_share"`
	RunsPerEvent     float64 `json:"runs_per_event"`
	ActionsPerEvent  float64 `json:"actions_per_event"`
	// IndexedCPUMicrosPerEvent is the process's CPU time per event of the
	// indexed run (1e6 / IndexedEventsPerCPUSec); RedisCPUMicrosPerEvent
	// redis-server's (0 when the suite did not start it).
	IndexedCPUMicrosPerEvent float64 `json:"indexed_cpu_us_per_event"`
	RedisCPUMicrosPerEvent   float64 `json:"redis_cpu_us_per_event,omitempty"`
	// AllocsPerEvent and BytesPerEvent are the heap allocations of the
	// indexed run (runtime.MemStats Mallocs and TotalAlloc) per event.
	AllocsPerEvent float64 `json:"allocs_per_event"`
	BytesPerEvent  float64 `json:"bytes_per_event"`
	// CacheHitRatio is the share of the record snapshots the indexed run
	// read from the partition's state cache rather than Redis
	// (whenthen_state_cache_hits_total over hits and misses).
	CacheHitRatio float64 `json:"cache_hit_ratio"`
	// MatchedPerEvent is the automations whose trigger and condition
	// matched, per event (whenthen_automations_matched_total);
	// MicrosPerMatched the process's and redis-server's CPU time per
	// matched automation: (IndexedCPUMicrosPerEvent +
	// RedisCPUMicrosPerEvent) / MatchedPerEvent, 0 when nothing matched.
	MatchedPerEvent  float64 `json:"matched_per_event"`
	MicrosPerMatched float64 `json:"us_per_matched"`
	// NaiveCompileSeconds is the time cel-go took to plan every condition
	// of the rule set, done before the naive run's clock starts (cel-go
	// plans a program on its first use): the naive rate is evaluation
	// only.
	NaiveCompileSeconds float64 `json:"naive_compile_seconds"`
	// EvalEvents and EvalEventsPerSec are the offline path of `whenthen
	// eval` on the same events (from the first, within the eval budget):
	// decode each envelope, Replay.Event on the in-memory store, encode
	// its outputs as JSON lines (to nowhere). 0 when not run.
	EvalEvents       int     `json:"eval_events,omitempty"`
	EvalEventsPerSec float64 `json:"eval_events_per_sec,omitempty"`
	// LoadSeconds and RSSMB are the scenario process's rule loading (see
	// LoadResult).
	LoadSeconds float64 `json:"load_seconds"`
	RSSMB       float64 `json:"rss_mb"`
}

// LoadResult is the compilation of a rule set from files in a fresh
// process, as `whenthen run` does at start: Compiler.Load of the
// workload's files (YAML parsing, CEL compilation) and the engine's
// index.
type LoadResult struct {
	Automations int `json:"automations"`
	Workspaces  int `json:"workspaces"`
	Files       int `json:"files"`
	// Seconds is CompileSeconds + IndexSeconds.
	Seconds        float64 `json:"seconds"`
	CompileSeconds float64 `json:"compile_seconds"`
	IndexSeconds   float64 `json:"index_seconds"`
	// RSSMB is the process's peak resident set (VmHWM of
	// /proc/self/status) once loaded, in MiB; RSSSource names where it
	// was read.
	RSSMB     float64 `json:"rss_mb"`
	RSSSource string  `json:"rss_source"`
	// HeapMB is the Go heap still in use after a GC: what the loaded
	// rules keep.
	HeapMB float64 `json:"heap_mb"`
}

// runScenario is the scenario process: it loads the rule files of req.Dir,
// then (if req.Events > 0) runs the match.
func runScenario(ctx context.Context, req childRequest) (*childResult, error) {
	w := gen.Workload{Automations: req.Automations, Workspaces: req.Workspaces, Seed: req.Seed, Fanout: req.Fanout}
	// The engine's store needs a client; loading alone never uses it.
	var rdb redis.UniversalClient
	if req.RedisURL == "" {
		rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	} else {
		var err error
		if rdb, err = newRedisClient(req.RedisURL); err != nil {
			return nil, err
		}
	}
	defer rdb.Close()

	// Load: what `whenthen run` does before it serves.
	sc := Scenario{Automations: req.Automations, Workspaces: w.NumWorkspaces(), Fanout: req.Fanout}
	name := sc.fileName()
	stopProfile, err := startProfile(req.ProfileDir, "load-"+name)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := rules.NewCompiler(rules.CompilerOptions{})
	if err != nil {
		return nil, err
	}
	srcs, err := rules.ReadFiles(req.Dir)
	if err != nil {
		return nil, err
	}
	set, err := c.Compile(srcs)
	if err != nil {
		return nil, fmt.Errorf("generated rules do not load: %w", err)
	}
	compiled := time.Since(start)
	s := &Setup{Workload: w, Compiler: c, Set: set, LoadTime: compiled}
	indexedReg := prometheus.NewRegistry()
	indexed, err := s.engineWithMetrics(rdb, req.Prefix+"indexed:", false, indexedReg)
	if err != nil {
		return nil, err
	}
	total := time.Since(start)
	rss, source := peakRSS()
	if err := stopProfile(); err != nil {
		return nil, err
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if err := writeHeapProfile(req.ProfileDir, "load-"+name+"-heap"); err != nil {
		return nil, err
	}
	res := &childResult{Load: LoadResult{
		Automations: len(set.Automations), Workspaces: w.NumWorkspaces(), Files: len(set.Files),
		Seconds: total.Seconds(), CompileSeconds: compiled.Seconds(), IndexSeconds: (total - compiled).Seconds(),
		RSSMB: mib(rss), RSSSource: source, HeapMB: mib(ms.HeapAlloc),
	}}
	if req.Events <= 0 {
		return res, nil
	}

	// Match.
	if err := s.decode(req.Events); err != nil {
		return nil, err
	}
	m := &ScenarioResult{Name: sc.Name(), Automations: len(set.Automations), Workspaces: sc.Workspaces, Fanout: sc.Fanout,
		LoadSeconds: res.Load.Seconds, RSSMB: res.Load.RSSMB}
	var redisCores float64
	var allocs, allocBytes uint64
	run := func(e *engine.Engine, mode string, budget time.Duration) (MatchResult, float64, error) {
		runtime.GC() // the last run's garbage is not this one's
		stop, err := startProfile(req.ProfileDir, "match-"+name+"-"+mode)
		if err != nil {
			return MatchResult{}, 0, err
		}
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := cpuTime()
		rcpu0, rok0 := procCPU(req.RedisPID)
		r, err := s.RunEngine(ctx, e, len(s.Events), req.Batch, budget)
		cores := (cpuTime() - cpu0).Seconds() / r.Elapsed.Seconds()
		if rcpu1, rok1 := procCPU(req.RedisPID); rok0 && rok1 {
			redisCores = (rcpu1 - rcpu0).Seconds() / r.Elapsed.Seconds()
		}
		runtime.ReadMemStats(&ms1)
		allocs, allocBytes = ms1.Mallocs-ms0.Mallocs, ms1.TotalAlloc-ms0.TotalAlloc
		if perr := stop(); err == nil {
			err = perr
		}
		return r, cores, err
	}
	ir, cores, err := run(indexed, "indexed", req.IndexedBudget)
	if err != nil {
		return nil, fmt.Errorf("indexed run: %w", err)
	}
	m.IndexedRedisCPUCores = redisCores
	m.Events, m.IndexedEventsPerSec, m.IndexedCPUCores = ir.Events, ir.EventsPerSec, cores
	if cores > 0 {
		m.IndexedEventsPerCPUSec = ir.EventsPerSec / cores
		m.IndexedCPUMicrosPerEvent = 1e6 / m.IndexedEventsPerCPUSec
	}
	m.RedisCPUMicrosPerEvent = 1e6 * redisCores / ir.EventsPerSec
	m.AllocsPerEvent = float64(allocs) / float64(ir.Events)
	m.BytesPerEvent = float64(allocBytes) / float64(ir.Events)
	m.RunsPerEvent = float64(ir.Runs) / float64(ir.Events)
	m.ActionsPerEvent = float64(ir.Actions) / float64(ir.Events)
	evaluated, _ := gathered(indexedReg, "whenthen_automations_evaluated_total", "")
	evalSeconds, _ := gathered(indexedReg, "whenthen_eval_duration_seconds", "")
	matched, _ := gathered(indexedReg, "whenthen_automations_matched_total", "")
	hits, _ := gathered(indexedReg, "whenthen_state_cache_hits_total", "")
	misses, _ := gathered(indexedReg, "whenthen_state_cache_misses_total", "")
	m.IndexedCandidatesPerEvent = evaluated / float64(ir.Events)
	m.IndexedEvalShare = evalSeconds / ir.Elapsed.Seconds()
	m.MatchedPerEvent = matched / float64(ir.Events)
	if matched > 0 {
		m.MicrosPerMatched = (m.IndexedCPUMicrosPerEvent + m.RedisCPUMicrosPerEvent) / m.MatchedPerEvent
	}
	if hits+misses > 0 {
		m.CacheHitRatio = hits / (hits + misses)
	}

	// The naive run: cel-go plans a program on its first use, so every
	// condition is planned first, off the clock, and that time is
	// reported on its own.
	planned, err := planConditions(set)
	if err != nil {
		return nil, fmt.Errorf("planning the naive run's programs: %w", err)
	}
	m.NaiveCompileSeconds = planned.Seconds()
	naiveReg := prometheus.NewRegistry()
	naive, err := s.engineWithMetrics(rdb, req.Prefix+"naive:", true, naiveReg)
	if err != nil {
		return nil, err
	}
	nr, _, err := run(naive, "naive", req.NaiveBudget)
	if err != nil {
		return nil, fmt.Errorf("naive run: %w", err)
	}
	m.NaiveEvents, m.NaiveEventsPerSec = nr.Events, nr.EventsPerSec
	evaluated, _ = gathered(naiveReg, "whenthen_automations_evaluated_total", "")
	m.NaiveCandidatesPerEvent = evaluated / float64(nr.Events)
	if nr.EventsPerSec > 0 {
		m.Speedup = ir.EventsPerSec / nr.EventsPerSec
	}

	if req.EvalBudget > 0 {
		runtime.GC()
		stop, err := startProfile(req.ProfileDir, "eval-"+name)
		if err != nil {
			return nil, err
		}
		er, err := s.RunEval(ctx, req.EvalBudget)
		if perr := stop(); err == nil {
			err = perr
		}
		if err != nil {
			return nil, fmt.Errorf("eval run: %w", err)
		}
		m.EvalEvents, m.EvalEventsPerSec = er.Events, er.EventsPerSec
	}
	res.Match = m
	return res, nil
}

// engineWithMetrics is Setup.Engine with the engine's metrics registered
// on reg.
func (s *Setup) engineWithMetrics(rdb redis.UniversalClient, prefix string, noIndex bool, reg prometheus.Registerer) (*engine.Engine, error) {
	st, err := store.NewRedis(rdb, prefix, store.Options{Schema: s.Compiler.Schema(), Limits: s.Compiler.Limits()})
	if err != nil {
		return nil, err
	}
	return engine.New(engine.Options{Rules: s.Set, Schema: s.Compiler.Schema(), Store: st, NoIndex: noIndex, Registerer: reg})
}

// decode generates and decodes n events of the setup's workload, as
// Prepare does.
func (s *Setup) decode(n int) error {
	s.Raw = s.Workload.Events(n)
	dec, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: s.Compiler.Schema()})
	if err != nil {
		return err
	}
	s.Events = make([]*engine.Event, 0, len(s.Raw))
	for i, raw := range s.Raw {
		ev, err := dec.Decode(nil, raw)
		if err != nil {
			return fmt.Errorf("generated event %d does not decode: %w", i, err)
		}
		s.Events = append(s.Events, ev)
	}
	return nil
}

// startProfile starts a CPU profile in dir/name.pprof; dir "" profiles
// nothing. stop ends it.
func startProfile(dir, name string) (stop func() error, err error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// writeHeapProfile writes the heap profile (as of the last GC) to
// dir/name.pprof; dir "" writes nothing.
func writeHeapProfile(dir, name string) error {
	if dir == "" {
		return nil
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
