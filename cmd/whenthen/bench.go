package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/whenthen/whenthen/bench"
	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/internal/daemon"
)

func init() {
	register(&command{name: "bench", summary: "the benchmark suite: matching, end to end, loading; a table, or JSON with --json", run: runBench})
}

func runBench(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o bench.Options
	asJSON := fs.Bool("json", false, "print the results as one JSON object instead of a table")
	jsonOut := fs.String("json-out", "", "also write the JSON results to `FILE`")
	fs.BoolVar(&o.Quick, "quick", false, "a smaller run that finishes within about a minute and a half on 2 cores")
	fs.StringVar(&o.RedisURL, "redis-url", "", "use this Redis (redis://...); default: a redis-server child on a free port (redis-server must be installed)")
	scenarios := fs.String("scenarios", "all", "comma-separated `LIST` of what to run: match scenarios AUTOMATIONS/WORKSPACES (e.g. 10k/1; 10k/1-fanout for conditions that are not selective), match (the five of the issues), e2e, load, deliver; or all; and history (the run history on PostgreSQL: not part of all)")
	fs.IntVar(&o.Deliver.Actions, "deliver-actions", 0, "backlog of actions each delivery run drains (default 100000, 20000 with --quick)")
	fs.IntVar(&o.Events, "events", 0, "distinct events per match scenario (default 200000, 20000 with --quick)")
	fs.DurationVar(&o.IndexedBudget, "indexed-budget", 0, "most time for the indexed run of a scenario (default 60s, 5s with --quick)")
	fs.DurationVar(&o.NaiveBudget, "naive-budget", 0, "time for the run evaluating every rule (default 10s, 2s with --quick)")
	e2eRules := fs.String("e2e-rules", "1k/1", "`AUTOMATIONS/WORKSPACES` of the service's rules end to end")
	fs.IntVar(&o.E2E.Events, "e2e-events", 0, "backlog drained end to end by the service and each passthrough (default 200000, 20000 with --quick)")
	fs.DurationVar(&o.E2E.Duration, "e2e-duration", 0, "how long events are produced at half the maximum rate for latency (default 20s, 5s with --quick)")
	fs.IntVar(&o.E2E.Partitions, "partitions", 4, "partitions of the end-to-end topics")
	loadRules := fs.String("load", "100k/1000", "`AUTOMATIONS/WORKSPACES` whose loading is measured")
	loadOnly := fs.String("load-only", "", "measure only the loading of `N` automations (over N/100 workspaces, or N/W)")
	fs.StringVar(&o.ProfileDir, "cpuprofile-dir", "", "write a CPU profile of every measured phase into `DIR`")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the generated workloads")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	child := fs.String("child", "", "internal: run one scenario process for the suite, given its JSON `REQUEST`")
	var hist benchHistory
	hist.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen bench [--quick] [--json] [--redis-url URL] [--scenarios LIST] [--load-only N]")
		fmt.Fprintln(env.stderr, "\nRuns the benchmark suite of bench/: the engine alone on 100, 1k and 10k")
		fmt.Fprintln(env.stderr, "automations in one workspace, 100k over 1,000 and 10k unselective ones (indexed")
		fmt.Fprintln(env.stderr, "and evaluating every rule, each scenario in a process of its own), the service end to end on an")
		fmt.Fprintln(env.stderr, "in-memory broker beside kafka-go and franz-go passthroughs, and the time and peak RSS of")
		fmt.Fprintln(env.stderr, "loading 100k automations. A full run takes a few minutes on 2 cores.")
		fmt.Fprintln(env.stderr)
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fs.Usage()
		return 2
	}
	bad := func(format string, args ...any) int {
		fmt.Fprintf(env.stderr, "whenthen bench: "+format+"\n", args...)
		return 2
	}
	if *child != "" {
		if err := bench.RunChild(ctx, *child, os.Stdin, env.stdout); err != nil {
			fmt.Fprintf(env.stderr, "whenthen bench --child: %v\n", err)
			return 1
		}
		return 0
	}

	var err error
	if o.Load, err = bench.ParseScenario(*loadRules); err != nil {
		return bad("--load: %v", err)
	}
	if *loadOnly != "" {
		n, w, _ := strings.Cut(*loadOnly, "/")
		if w == "" {
			w = "1"
			if c, err := bench.ParseScenario(n + "/1"); err == nil && c.Automations >= 100 {
				w = fmt.Sprint(c.Automations / 100)
			}
		}
		if o.Load, err = bench.ParseScenario(n + "/" + w); err != nil {
			return bad("--load-only: %v", err)
		}
		*scenarios = "load"
	}
	sc, err := bench.ParseScenario(*e2eRules)
	if err != nil {
		return bad("--e2e-rules: %v", err)
	}
	o.E2E.Workload = gen.Workload{Automations: sc.Automations, Workspaces: sc.Workspaces}
	if err := selectScenarios(&o, hist.apply(&o, *scenarios)); err != nil {
		return bad("--scenarios: %v", err)
	}
	if o.Events < 0 || o.E2E.Events < 0 || o.E2E.Partitions < 1 {
		return bad("--events, --e2e-events and --partitions must be positive")
	}
	if o.IndexedBudget < 0 || o.NaiveBudget < 0 || o.E2E.Duration < 0 {
		return bad("durations must be positive")
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen bench: finding this executable for the scenario processes: %v\n", err)
		return 1
	}
	o.Child = func(ctx context.Context, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, exe, append([]string{"bench"}, args...)...)
	}
	level := "info"
	if *quiet {
		level = "error"
	}
	if o.Logger, err = daemon.NewLogger(env.stderr, "text", level); err != nil {
		return bad("%v", err)
	}
	if !*quiet {
		o.Stderr = env.stderr
	}

	res, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen bench: %v\n", err)
		return 1
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen bench: %v\n", err)
		return 1
	}
	js = append(js, '\n')
	if *jsonOut != "" {
		if err := os.WriteFile(*jsonOut, js, 0o644); err != nil {
			fmt.Fprintf(env.stderr, "whenthen bench: --json-out: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		_, _ = env.stdout.Write(js)
	} else {
		printBench(env.stdout, res)
	}
	return 0
}

// selectScenarios applies --scenarios to o.
func selectScenarios(o *bench.Options, list string) error {
	if list == "all" || list == "" {
		return nil
	}
	o.NoMatch, o.NoE2E, o.NoLoad, o.NoDeliver = true, true, true, true
	o.Scenarios = []bench.Scenario{}
	for _, item := range strings.Split(list, ",") {
		switch item = strings.TrimSpace(item); item {
		case "all":
			o.NoMatch, o.NoE2E, o.NoLoad, o.NoDeliver = false, false, false, false
			o.Scenarios = append(o.Scenarios, bench.DefaultScenarios...)
		case "match":
			o.NoMatch = false
			o.Scenarios = append(o.Scenarios, bench.DefaultScenarios...)
		case "e2e":
			o.NoE2E = false
		case "load":
			o.NoLoad = false
		case "deliver":
			o.NoDeliver = false
		default:
			sc, err := bench.ParseScenario(item)
			if err != nil {
				return fmt.Errorf("%q: want match, e2e, load, deliver, all or AUTOMATIONS/WORKSPACES", item)
			}
			o.NoMatch = false
			o.Scenarios = append(o.Scenarios, sc)
		}
	}
	return nil
}

// printBench writes the results as tables.
func printBench(w io.Writer, r *bench.Results) {
	kind := "full run"
	if r.Quick {
		kind = "quick run (--quick)"
	}
	m := r.Machine
	fmt.Fprintf(w, "whenthen bench: %s, %s\n", kind, time.Duration(r.Seconds*float64(time.Second)).Round(time.Second).String())
	fmt.Fprintf(w, "machine  %d CPUs, %s, %d MiB, %s %s, load average %.2f at start\n", m.CPUs, m.CPUModel, m.MemoryMB, m.Go, m.OS, m.LoadAverage)
	fmt.Fprintf(w, "redis    %s\n", r.Redis)
	if len(r.Match) > 0 {
		fmt.Fprintf(w, "\nmatch: the engine alone, events/s PER CORE (Engine.Process runs a batch on one goroutine),\n")
		fmt.Fprintf(w, "batches of 500, state in Redis, each scenario in a process of its own; the naive run\n")
		fmt.Fprintf(w, "evaluates every rule of the event's workspace and trigger with cel-go (no index, no specialised\n")
		fmt.Fprintf(w, "evaluator), on the same events from the first, every cel-go program planned before its clock starts\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tautomations\tworkspaces\tevents\tindexed ev/s\tnaive events\tnaive ev/s\tspeedup\t")
		for _, s := range r.Match {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%d\t%.0f\t%.1fx\t\n", s.Name, s.Automations, s.Workspaces, s.Events,
				s.IndexedEventsPerSec, s.NaiveEvents, s.NaiveEventsPerSec, s.Speedup)
		}
		tw.Flush()
		plans := make([]string, 0, len(r.Match))
		for _, s := range r.Match {
			plans = append(plans, fmt.Sprintf("%s %.2f s", s.Name, s.NaiveCompileSeconds))
		}
		fmt.Fprintf(w, "\nnaive compile (cel-go planning every condition, off the naive clock): %s\n", strings.Join(plans, ", "))
		fmt.Fprintf(w, "\nwhere the indexed run's time goes\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tcpu cores\tredis cores\tev/CPU-s\tcandidates/ev\tnaive cand/ev\teval share\truns/ev\tactions/ev\tload s\tRSS MiB\t")
		for _, s := range r.Match {
			fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.0f\t%.1f\t%.1f\t%.0f%%\t%.4f\t%.4f\t%.2f\t%.0f\t\n", s.Name, s.IndexedCPUCores, s.IndexedRedisCPUCores, s.IndexedEventsPerCPUSec,
				s.IndexedCandidatesPerEvent, s.NaiveCandidatesPerEvent, 100*s.IndexedEvalShare, s.RunsPerEvent, s.ActionsPerEvent, s.LoadSeconds, s.RSSMB)
		}
		tw.Flush()
		fmt.Fprintln(w, "\ncpu cores: the process's CPU time over wall time; redis cores: redis-server's (0: not ours); ev/CPU-s:")
		fmt.Fprintln(w, "events per second of the process's CPU time; candidates/ev: conditions evaluated per event; eval share: time finding and")
		fmt.Fprintln(w, "evaluating candidates (the rest: record state, Redis round trips, dedup, outputs, GC); load s and")
		fmt.Fprintln(w, "RSS MiB: the scenario process's rule loading")
		fmt.Fprintf(w, "\nper event and per matched automation (indexed run); eval: `whenthen eval`'s offline path\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tcpu µs/ev\tredis µs/ev\tallocs/ev\tKiB/ev\tcache hits\tmatched/ev\tµs/matched\teval ev/s\t")
		for _, s := range r.Match {
			perMatched := "-"
			if s.MatchedPerEvent >= 1 {
				perMatched = fmt.Sprintf("%.2f", s.MicrosPerMatched)
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.2f\t%.0f%%\t%.2f\t%s\t%.0f\t\n", s.Name, s.IndexedCPUMicrosPerEvent, s.RedisCPUMicrosPerEvent,
				s.AllocsPerEvent, s.BytesPerEvent/1024, 100*s.CacheHitRatio, s.MatchedPerEvent, perMatched, s.EvalEventsPerSec)
		}
		tw.Flush()
		fmt.Fprintln(w, "\ncpu µs/ev and redis µs/ev: the process's and redis-server's CPU time per event (redis 0: not ours); allocs/ev")
		fmt.Fprintln(w, "and KiB/ev: heap allocations per event; cache hits: snapshots read from the partition's state cache rather")
		fmt.Fprintln(w, "than Redis; matched/ev: automations whose condition held; µs/matched: (cpu + redis) µs per matched automation")
		fmt.Fprintln(w, "(-: under one per event, where it would be mostly the cost of the events that match nothing);")
		fmt.Fprintln(w, "eval ev/s: decode, Replay.Event on the in-memory store and JSON outputs, one event at a time, on one core")
	}
	if e := r.E2E; e != nil {
		fmt.Fprintf(w, "\nend to end: in-memory broker (kfake, %d partitions) -> service (%d automations, %d workspace(s), Redis above) -> broker;\n", e.Partitions, e.Automations, e.Workspaces)
		fmt.Fprintf(w, "the service and each passthrough in a process of their own, the broker and load generator in this one\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  service\t%.0f events/s\tdraining a backlog of %d events (%.4f actions, %.4f runs per event)\n", e.EventsPerSec, e.Events, e.ActionsPerEvent, e.RunsPerEvent)
		fmt.Fprintf(tw, "  kafka-go\t%.0f events/s\tpassthrough of the same backlog: the service's consumer (a worker per partition, batches of 500 or 5 ms,\n", e.PassthroughEventsPerSec)
		fmt.Fprintf(tw, "\t\tcommits every 50 ms) and producer settings, writing %.4f copies per event (the service's outputs per event), nothing else\n", e.PassthroughOutputsPerEvent)
		fmt.Fprintf(tw, "  franz-go\t%.0f events/s\tthe same with franz-go's consumer group (a goroutine per partition per poll, marks committed every 50 ms)\n", e.FranzEventsPerSec)
		fmt.Fprintf(tw, "  ratio\t%.1f %%\tservice / kafka-go passthrough; %.1f %% of franz-go's\n", 100*e.Ratio, 100*e.FranzRatio)
		fmt.Fprintf(tw, "  latency\tp50 %.1f ms\tp99 %.1f ms, max %.1f ms: produce call to action record read, at %.0f events/s for %.1fs (%d of %d events fired an action)\n",
			e.P50MS, e.P99MS, e.MaxMS, e.LatencyRate, e.LatencySeconds, e.LatencySamples, e.LatencyEvents)
		fmt.Fprintf(tw, "  passthrough\tp50 %.1f ms\tp99 %.1f ms: the kafka-go passthrough at the same rate afterwards (produce call to copy read, events copied)\n",
			e.PassthroughP50MS, e.PassthroughP99MS)
		v := e.Service
		fmt.Fprintf(tw, "  in service\tp50 <= %s\tp99 <= %s by its own metric (Kafka timestamp to outputs acknowledged, every event)\n",
			bucketMS(v.EventP50MS), bucketMS(v.EventP99MS))
		fmt.Fprintf(tw, "  cpu\t%.0f %% busy\tof the machine meanwhile: service %.2f cores (%.0f GCs), broker and load generator %.2f, redis-server %.2f\n",
			100*e.MachineCPUBusy, v.CPUCores, v.GCCycles, e.SuiteCPUCores, e.RedisCPUCores)
		fmt.Fprintf(tw, "  batches\t%.1f events\tper partition batch, %.1f ms each (p99 <= %s); Engine.Process %.1f ms (p99 <= %s); produce of actions %.1f ms (p99 <= %s); %.0f retries\n",
			v.BatchEvents, v.BatchMS, bucketMS(v.BatchP99MS), v.EngineMS, bucketMS(v.EngineP99MS), v.ProduceMS, bucketMS(v.ProduceP99MS), v.Retries)
		tw.Flush()
	}
	if l := r.Load; l != nil {
		fmt.Fprintf(w, "\nload: %d automations over %d workspace(s) in %d files, in a fresh process\n\n", l.Automations, l.Workspaces, l.Files)
		fmt.Fprintf(w, "  %.2f s (compile %.2f s, index %.2f s), peak RSS %.0f MiB (%s), heap after GC %.0f MiB\n", l.Seconds, l.CompileSeconds, l.IndexSeconds, l.RSSMB, l.RSSSource, l.HeapMB)
	}
	printDeliverBench(w, r.Deliver)
	printBenchHistory(w, r)
	if len(r.Goals) > 0 {
		fmt.Fprintf(w, "\ngoals\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, g := range r.Goals {
			met := "MISSED"
			switch {
			case g.Shown:
				met = "shown"
			case g.Met:
				met = "met"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\ttarget %s\n", met, g.Name, goalValue(g), g.Target)
		}
		tw.Flush()
	}
}

// goalValue writes a goal's value with the precision its unit needs.
func goalValue(g bench.Goal) string {
	switch g.Unit {
	case "events/s", "MiB", "deliveries/s":
		return fmt.Sprintf("%.0f %s", g.Value, g.Unit)
	case "s", "µs":
		return fmt.Sprintf("%.2f %s", g.Value, g.Unit)
	case "x":
		return fmt.Sprintf("%.2fx", g.Value)
	}
	return fmt.Sprintf("%.1f %s", g.Value, g.Unit)
}

// bucketMS writes a histogram bucket's upper bound in milliseconds.
func bucketMS(ms float64) string {
	if math.IsInf(ms, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%g ms", ms)
}
