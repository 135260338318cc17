package bench

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/rules"
)

// Setup is a compiled workload ready to run: rules, decoded events.
type Setup struct {
	Workload gen.Workload
	Compiler *rules.Compiler
	Set      *rules.Set
	Raw      [][]byte
	Events   []*engine.Event
	// LoadTime is how long compiling the rule set took.
	LoadTime time.Duration
}

// Prepare compiles the workload's rules and decodes n events.
func Prepare(w gen.Workload, n int) (*Setup, error) {
	c, err := rules.NewCompiler(rules.CompilerOptions{})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	set, err := c.Compile(w.Rules())
	if err != nil {
		return nil, fmt.Errorf("generated rules do not load: %w", err)
	}
	s := &Setup{Workload: w, Compiler: c, Set: set, LoadTime: time.Since(start), Raw: w.Events(n)}
	dec, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: c.Schema()})
	if err != nil {
		return nil, err
	}
	for i, raw := range s.Raw {
		ev, err := dec.Decode(nil, raw)
		if err != nil {
			return nil, fmt.Errorf("generated event %d does not decode: %w", i, err)
		}
		s.Events = append(s.Events, ev)
	}
	return s, nil
}

// Engine builds an engine over the setup's rules with state in rdb under
// prefix.
func (s *Setup) Engine(rdb redis.UniversalClient, prefix string, noIndex bool) (*engine.Engine, error) {
	return s.engineWithMetrics(rdb, prefix, noIndex, nil)
}

// MatchResult is one run of events through an engine.
type MatchResult struct {
	Events       int
	Elapsed      time.Duration
	Runs         int
	Actions      int
	EventsPerSec float64
}

// RunEngine processes events (cycling over the setup's) in batches of
// batch through e until n events or the deadline, committing each batch.
func (s *Setup) RunEngine(ctx context.Context, e *engine.Engine, n, batch int, deadline time.Duration) (MatchResult, error) {
	var res MatchResult
	// The service's default state cache: the events are one partition's.
	cache := engine.NewCacheBudget(engine.DefaultCacheBytes).Partition()
	start := time.Now()
	for res.Events < n && time.Since(start) < deadline {
		lo := res.Events % len(s.Events)
		if lo == 0 {
			cache.Reset() // a second pass over the events is not a partition's next batches
		}
		hi := min(lo+batch, len(s.Events), lo+n-res.Events)
		out, err := e.ProcessCached(ctx, s.Events[lo:hi], "", cache)
		if err != nil {
			return res, err
		}
		if err := e.Commit(ctx, out); err != nil {
			return res, err
		}
		res.Runs += len(out.Runs)
		res.Actions += len(out.Actions)
		res.Events += hi - lo
	}
	res.Elapsed = time.Since(start)
	res.EventsPerSec = float64(res.Events) / res.Elapsed.Seconds()
	return res, nil
}

// PlanConditions has cel-go plan the program of every condition of the
// setup's rules, on every core, and returns how long that took: the naive
// engine evaluates conditions with cel-go, which otherwise plans each on
// its first use, inside the naive run's clock. Call it before timing a
// naive run.
func (s *Setup) PlanConditions() (time.Duration, error) { return planConditions(s.Set) }

// planConditions is PlanConditions for set.
func planConditions(set *rules.Set) (time.Duration, error) {
	start := time.Now()
	work := make(chan *rules.Condition)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for c := range work {
				if err := c.Plan(); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, a := range set.Automations {
		if a.If != nil {
			work <- a.If
		}
	}
	close(work)
	wg.Wait()
	return time.Since(start), first
}

// RunEval runs the setup's events, from the first, through the offline
// path of `whenthen eval` until all are done or the deadline: each
// envelope decoded, fed to Replay.Event over the in-memory store, and
// its outputs encoded as eval prints them (into a buffer that is
// dropped).
func (s *Setup) RunEval(ctx context.Context, deadline time.Duration) (MatchResult, error) {
	var res MatchResult
	opts := store.Options{Schema: s.Compiler.Schema(), Limits: s.Compiler.Limits()}
	mem, err := store.NewMemory(opts)
	if err != nil {
		return res, err
	}
	replay, err := engine.NewReplay(engine.Options{Rules: s.Set, Schema: s.Compiler.Schema(), Store: mem})
	if err != nil {
		return res, err
	}
	dec, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: s.Compiler.Schema()})
	if err != nil {
		return res, err
	}
	var line []byte
	start := time.Now()
	for _, raw := range s.Raw {
		if time.Since(start) >= deadline {
			break
		}
		ev, err := dec.Decode(nil, raw)
		if err != nil {
			return res, fmt.Errorf("event %d: %w", res.Events, err)
		}
		outs, err := replay.Event(ctx, ev)
		if err != nil {
			return res, fmt.Errorf("event %d: %w", res.Events, err)
		}
		for _, out := range outs {
			for i := range out.Actions {
				line = out.Actions[i].AppendJSON(line[:0])
			}
			for i := range out.Runs {
				line = out.Runs[i].AppendJSON(line[:0])
			}
			res.Runs += len(out.Runs)
			res.Actions += len(out.Actions)
		}
		res.Events++
	}
	res.Elapsed = time.Since(start)
	res.EventsPerSec = float64(res.Events) / res.Elapsed.Seconds()
	return res, nil
}
