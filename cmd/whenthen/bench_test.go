package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/bench"
	"github.com/whenthen/whenthen/internal/testenv"
)

// envBenchChild makes this test binary act as `whenthen` for the scenario
// processes `whenthen bench` starts from its own executable.
const envBenchChild = "WHENTHEN_BENCH_TEST_CHILD"

func init() {
	if os.Getenv(envBenchChild) != "1" {
		return
	}
	env := &cmdEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(context.Background(), env, os.Args[1:]))
}

// TestBenchJSON runs a small subset of the suite (`--quick` takes most of
// a minute, longer under -race) and checks the JSON it prints.
func TestBenchJSON(t *testing.T) {
	t.Setenv(envBenchChild, "1") // for the children only: init has run
	code, out, errs := runCmd(t, "bench", "--json", "--quiet", "--redis-url", testenv.RedisURL(t),
		"--scenarios", "100/1,e2e,load", "--events", "300", "--naive-budget", "300ms", "--load", "1k/10",
		"--e2e-rules", "100/1", "--e2e-events", "500", "--e2e-duration", "1s", "--partitions", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if errs != "" {
		t.Errorf("stderr with --quiet: %s", errs)
	}
	var res bench.Results
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if res.Quick || len(res.Match) != 1 || res.E2E == nil || res.Load == nil {
		t.Fatalf("results %s", out)
	}
	m := res.Match[0]
	if m.Name != "100/1" || m.Events != 300 || m.IndexedEventsPerSec <= 0 || m.NaiveEventsPerSec <= 0 {
		t.Errorf("match %+v", m)
	}
	if e := res.E2E; e.Automations != 100 || e.Partitions != 2 || e.Events != 500 || e.EventsPerSec <= 0 || e.PassthroughEventsPerSec <= 0 {
		t.Errorf("e2e %+v", e)
	}
	if l := res.Load; l.Automations != 1000 || l.Workspaces != 10 || l.Seconds <= 0 || l.RSSMB <= 0 {
		t.Errorf("load %+v", l)
	}
	if !strings.HasPrefix(res.Redis, "given") {
		t.Errorf("redis %q", res.Redis)
	}
}

func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad scenario", []string{"--scenarios", "match,10x/1"}, `--scenarios: "10x/1"`},
		{"bad load", []string{"--load", "100k"}, "--load: "},
		{"bad load-only", []string{"--load-only", "many"}, "--load-only: "},
		{"bad e2e rules", []string{"--e2e-rules", "1k/0"}, "--e2e-rules: "},
		{"negative events", []string{"--events", "-1"}, "must be positive"},
		{"no partitions", []string{"--partitions", "0"}, "must be positive"},
		{"positional", []string{"extra"}, "usage: whenthen bench"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCmd(t, append([]string{"bench"}, tc.args...)...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs, tc.want)
			}
		})
	}
}

func TestSelectScenarios(t *testing.T) {
	for _, tc := range []struct {
		list                   string
		scenarios              []bench.Scenario
		noMatch, noE2E, noLoad bool
	}{
		{"all", nil, false, false, false},
		{"e2e", []bench.Scenario{}, true, false, true},
		{"load", []bench.Scenario{}, true, true, false},
		{"match", bench.DefaultScenarios, false, true, true},
		{"10k/1, e2e", []bench.Scenario{{Automations: 10_000, Workspaces: 1}}, false, false, true},
	} {
		t.Run(tc.list, func(t *testing.T) {
			var o bench.Options
			if err := selectScenarios(&o, tc.list); err != nil {
				t.Fatal(err)
			}
			if o.NoMatch != tc.noMatch || o.NoE2E != tc.noE2E || o.NoLoad != tc.noLoad || len(o.Scenarios) != len(tc.scenarios) {
				t.Fatalf("got %+v", o)
			}
			for i := range tc.scenarios {
				if o.Scenarios[i] != tc.scenarios[i] {
					t.Errorf("scenario %d: %+v, want %+v", i, o.Scenarios[i], tc.scenarios[i])
				}
			}
		})
	}
}

// TestPrintBench checks the table of a full result.
func TestPrintBench(t *testing.T) {
	res := &bench.Results{
		Machine: bench.Machine{CPUs: 2, CPUModel: "AMD EPYC", MemoryMB: 24105, Go: "go1.26.8", OS: "linux/amd64"},
		Redis:   "redis-server 7.0.15 (child process on 127.0.0.1:1)",
		Match: []bench.ScenarioResult{{Name: "10k/1", Automations: 10000, Workspaces: 1, Events: 200000,
			IndexedEventsPerSec: 123456, NaiveEvents: 900, NaiveEventsPerSec: 1000, Speedup: 123.456, IndexedCPUCores: 1.1, IndexedEventsPerCPUSec: 112233,
			IndexedCandidatesPerEvent: 12.5, NaiveCandidatesPerEvent: 5000, IndexedEvalShare: 0.4, NaiveCompileSeconds: 2.5,
			IndexedCPUMicrosPerEvent: 8.9, RedisCPUMicrosPerEvent: 4.2, AllocsPerEvent: 31, BytesPerEvent: 3686, CacheHitRatio: 0.25,
			MatchedPerEvent: 0.5, MicrosPerMatched: 26.2, EvalEvents: 1000, EvalEventsPerSec: 45678},
			{Name: "10k/1-fanout", Automations: 10000, Workspaces: 1, Fanout: true, Events: 1000, MatchedPerEvent: 15.5, MicrosPerMatched: 22.6}},
		E2E: &bench.E2EResult{Automations: 1000, Workspaces: 1, Partitions: 4, Events: 100000, EventsPerSec: 20000, PassthroughEventsPerSec: 50000,
			FranzEventsPerSec: 80000, PassthroughOutputsPerEvent: 0.033, Ratio: 0.4, FranzRatio: 0.25, P50MS: 3, P99MS: 12.5},
		Load: &bench.LoadResult{Automations: 100000, Workspaces: 1000, Files: 1000, Seconds: 9.5, RSSMB: 900, RSSSource: "VmHWM"},
		Goals: []bench.Goal{{Name: "10k speedup", Target: ">= 100x", Value: 123.456, Unit: "x", Met: true},
			{Name: "e2e share", Target: ">= 50%", Value: 40, Unit: "%"},
			{Name: "franz share", Target: "none", Value: 25, Unit: "%", Shown: true}},
	}
	var b bytes.Buffer
	printBench(&b, res)
	out := b.String()
	for _, want := range []string{
		"whenthen bench: full run",
		"redis    redis-server 7.0.15",
		"PER CORE",
		"10k/1        10000           1  200000        123456           900        1000   123.5x",
		"10k/1       1.10         0.00    112233           12.5         5000.0         40%",
		"service      20000 events/s",
		"naive compile (cel-go planning every condition, off the naive clock): 10k/1 2.50 s, 10k/1-fanout 0.00 s",
		"10k/1        8.9          4.2       31.0    3.60         25%        0.50           -      45678",
		"10k/1-fanout        0.0          0.0        0.0    0.00          0%       15.50       22.60          0",
		"kafka-go     50000 events/s",
		"writing 0.0330 copies per event",
		"franz-go     80000 events/s",
		"ratio        40.0 %          service / kafka-go passthrough; 25.0 % of franz-go's",
		"p99 12.5 ms",
		"9.50 s",
		"peak RSS 900 MiB (VmHWM)",
		"met     10k speedup  123.46x  target >= 100x",
		"MISSED  e2e share    40.0 %   target >= 50%",
		"shown   franz share  25.0 %   target none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}
