package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/internal/testenv"
)

// envChild makes the test binary a scenario process: Run's children are
// this binary with "--child REQUEST".
const envChild = "WHENTHEN_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		if len(os.Args) != 3 || os.Args[1] != "--child" {
			os.Stderr.WriteString("bench test child: want --child REQUEST\n")
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := RunChild(ctx, os.Args[2], os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	testenv.Main(m)
}

func testChild(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), envChild+"=1")
	return cmd
}

// TestRunTiny runs the whole suite on tiny sizes and checks that every
// number of the JSON is filled and sane.
func TestRunTiny(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{
		Scenarios:   []Scenario{{Automations: 100, Workspaces: 1}, {Automations: 1000, Workspaces: 10}, {Automations: 1000, Workspaces: 1, Fanout: true}},
		Events:      400,
		NaiveBudget: time.Second,
		E2E:         E2EOptions{Workload: gen.Workload{Automations: 100, Workspaces: 1, Seed: 1}, Events: 1000, Duration: 2 * time.Second, Partitions: 2},
		Load:        Scenario{Automations: 1000, Workspaces: 10},
		NoDeliver:   true, // TestRunDeliver
		RedisURL:    testenv.RedisURL(t),
		Child:       testChild,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", b)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"machine", "redis", "per_core", "match", "e2e", "load", "seconds"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("no %q in %s", key, b)
		}
	}
	// Rates of outputs may be zero on a few hundred events; every other
	// number must be positive.
	mayBeZero := map[string]bool{"runs_per_event": true, "actions_per_event": true, "load_average": true, "index_seconds": true,
		"gc_cycles": true, "produce_ms": true, "produce_p99_ms": true, "retries": true,
		"matched_per_event": true, "us_per_matched": true, "cache_hit_ratio": true, "passthrough_p50_ms": true, "passthrough_p99_ms": true}
	checkFilled(t, "", doc, mayBeZero)

	if len(res.Match) != 3 || res.Match[0].Name != "100/1" || res.Match[1].Name != "1k/10" || res.Match[2].Name != "1k/1-fanout" {
		t.Fatalf("match scenarios %+v", res.Match)
	}
	// The unselective workload matches automations on most events, each
	// costing CPU.
	if f := res.Match[2]; !f.Fanout || f.MatchedPerEvent < 1 || f.MicrosPerMatched <= 0 || f.IndexedCandidatesPerEvent < f.MatchedPerEvent {
		t.Errorf("1k/1-fanout: %v matched and %v candidates per event, %v µs per matched automation", f.MatchedPerEvent, f.IndexedCandidatesPerEvent, f.MicrosPerMatched)
	}
	for _, m := range res.Match {
		if m.Events != 400 || m.NaiveEvents < 1 || m.NaiveEvents > 400 {
			t.Errorf("%s: %d indexed and %d naive events, want 400 and 1..400", m.Name, m.Events, m.NaiveEvents)
		}
		if got := m.IndexedEventsPerSec / m.NaiveEventsPerSec; math.Abs(got-m.Speedup) > 1e-9*got {
			t.Errorf("%s: speedup %v, want indexed/naive %v", m.Name, m.Speedup, got)
		}
		if m.NaiveCandidatesPerEvent < m.IndexedCandidatesPerEvent || m.IndexedEvalShare > 1 {
			t.Errorf("%s: %v candidates per event indexed, %v naive, eval share %v", m.Name, m.IndexedCandidatesPerEvent, m.NaiveCandidatesPerEvent, m.IndexedEvalShare)
		}
		if m.RSSMB < 5 || m.RSSMB > 4096 {
			t.Errorf("%s: RSS %v MiB", m.Name, m.RSSMB)
		}
		if m.EvalEvents != 400 || m.NaiveCompileSeconds <= 0 || m.AllocsPerEvent < 1 || m.IndexedCPUMicrosPerEvent <= 0 {
			t.Errorf("%s: %d eval events, naive compile %v s, %v allocs and %v µs per event", m.Name, m.EvalEvents, m.NaiveCompileSeconds, m.AllocsPerEvent, m.IndexedCPUMicrosPerEvent)
		}
	}
	if l := res.Load; l.Automations != 1000 || l.Workspaces != 10 || l.Files != 10 || l.RSSSource != "VmHWM" ||
		math.Abs(l.Seconds-l.CompileSeconds-l.IndexSeconds) > 1e-6 || l.HeapMB > l.RSSMB {
		t.Errorf("load %+v", l)
	}
	if *res.Load != (LoadResult{Automations: 1000, Workspaces: 10, Files: 10, Seconds: res.Match[1].LoadSeconds,
		CompileSeconds: res.Load.CompileSeconds, IndexSeconds: res.Load.IndexSeconds, RSSMB: res.Match[1].RSSMB,
		RSSSource: "VmHWM", HeapMB: res.Load.HeapMB}) {
		t.Errorf("load %+v is not the 1k/10 scenario's %+v", *res.Load, res.Match[1])
	}
	e := res.E2E
	if e.Events != 1000 || e.Partitions != 2 || e.Automations != 100 || e.LatencyEvents < 1 {
		t.Errorf("e2e %+v", e)
	}
	if e.P50MS > e.P99MS || e.P99MS > e.MaxMS || e.LatencySamples > e.LatencyEvents {
		t.Errorf("e2e latencies %+v", e)
	}
	if math.Abs(e.Ratio-e.EventsPerSec/e.PassthroughEventsPerSec) > 1e-9 || math.Abs(e.FranzRatio-e.EventsPerSec/e.FranzEventsPerSec) > 1e-9 {
		t.Errorf("e2e ratios %v, %v", e.Ratio, e.FranzRatio)
	}
	if math.Abs(e.PassthroughOutputsPerEvent-e.ActionsPerEvent-e.RunsPerEvent) > 1e-9 {
		t.Errorf("the passthroughs write %v records per event, the service %v actions and %v runs", e.PassthroughOutputsPerEvent, e.ActionsPerEvent, e.RunsPerEvent)
	}
	if r := e.LatencyRate / (e.EventsPerSec / 2); r < 0.7 || r > 1.3 {
		t.Errorf("latency measured at %.0f events/s, want about half of %.0f", e.LatencyRate, e.EventsPerSec)
	}
	if !strings.HasPrefix(res.Redis, "given") || res.Machine.CPUs < 1 || res.Machine.Go == "" {
		t.Errorf("redis %q, machine %+v", res.Redis, res.Machine)
	}
	// Only the end-to-end goals apply to these scenarios.
	if len(res.Goals) != 3 {
		t.Errorf("goals %+v", res.Goals)
	}
	for _, g := range res.Goals {
		if !strings.HasPrefix(g.Name, "end to end") {
			t.Errorf("goal %+v", g)
		}
	}
}

// checkFilled fails for every number of v that is not finite and
// positive (zero where mayBeZero names the key), every empty string and
// every empty list.
func checkFilled(t *testing.T, path string, v any, mayBeZero map[string]bool) {
	t.Helper()
	key := path[strings.LastIndex(path, ".")+1:]
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			checkFilled(t, path+"."+k, x, mayBeZero)
		}
	case []any:
		if len(v) == 0 {
			t.Errorf("%s: empty", path)
		}
		for i, x := range v {
			checkFilled(t, path+"["+strconv.Itoa(i)+"]", x, mayBeZero)
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || (v == 0 && !mayBeZero[key]) {
			t.Errorf("%s = %v", path, v)
		}
	case string:
		if v == "" {
			t.Errorf("%s: empty", path)
		}
	}
}

func TestParseScenario(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Scenario
		err  string
	}{
		{"100/1", Scenario{Automations: 100, Workspaces: 1}, ""},
		{"10k/1", Scenario{Automations: 10_000, Workspaces: 1}, ""},
		{"10k/1-fanout", Scenario{Automations: 10_000, Workspaces: 1, Fanout: true}, ""},
		{"100k/1000", Scenario{Automations: 100_000, Workspaces: 1000}, ""},
		{"1M/10", Scenario{Automations: 1_000_000, Workspaces: 10}, ""},
		{"10k", Scenario{}, "want AUTOMATIONS/WORKSPACES"},
		{"0/1", Scenario{}, "positive count"},
		{"ten/1", Scenario{}, "positive count"},
		{"10/0", Scenario{}, "workspaces"},
		{"10/11", Scenario{}, "workspaces"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseScenario(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			if got.Name() != tc.in {
				t.Errorf("Name() = %q, want %q", got.Name(), tc.in)
			}
		})
	}
}

func TestGoals(t *testing.T) {
	res := &Results{
		Match: []ScenarioResult{
			{Automations: 1000, Workspaces: 1, IndexedEventsPerSec: 800_000},
			{Automations: 10_000, Workspaces: 1, IndexedEventsPerSec: 150_000, Speedup: 99, EvalEvents: 10, EvalEventsPerSec: 120_000},
			{Automations: 100_000, Workspaces: 1000, IndexedEventsPerSec: 500_000, IndexedRedisCPUCores: 0.5, RedisCPUMicrosPerEvent: 1},
			{Automations: 10_000, Workspaces: 1, Fanout: true, MatchedPerEvent: 20, MicrosPerMatched: 3.5},
		},
		E2E:  &E2EResult{Ratio: 0.6, FranzRatio: 0.4, P99MS: 51, LatencySamples: 10},
		Load: &LoadResult{Automations: 100_000, Seconds: 1.5, RSSMB: 310},
	}
	want := []struct {
		value      float64
		met, shown bool
	}{
		{99, false, false}, {150_000, true, false}, {120_000, true, false}, // 10k/1
		{500_000, true, false}, {1, true, false}, {1.6, true, false}, // 100k/1000
		{3.5, false, false},                                       // 10k/1-fanout
		{60, false, false}, {40, false, true}, {51, false, false}, // end to end
		{1.5, true, false}, {310, false, false}, // load
	}
	got := goals(res)
	if len(got) != len(want) {
		t.Fatalf("%d goals, want %d: %+v", len(got), len(want), got)
	}
	for i, g := range got {
		if math.Abs(g.Value-want[i].value) > 1e-9 || g.Met != want[i].met || g.Shown != want[i].shown || g.Name == "" || g.Target == "" {
			t.Errorf("goal %d: %+v, want value %v met %v shown %v", i, g, want[i].value, want[i].met, want[i].shown)
		}
	}
	if got := goals(&Results{E2E: &E2EResult{Ratio: 1}}); len(got) != 3 || got[2].Met {
		t.Errorf("a p99 without samples must not meet its goal: %+v", got)
	}
}

// TestStartRedis checks the Redis the suite starts when given none: a
// redis-server child that answers, gone after Close.
func TestStartRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not on PATH: install it (apt-get install redis-server)")
	}
	ctx := context.Background()
	r, err := startRedis(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Kind, "redis-server ") || !strings.Contains(r.Kind, "child process") {
		t.Errorf("kind %q", r.Kind)
	}
	c, err := newRedisClient(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, r.Prefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("the redis-server still answers after Close")
	}
}

// TestGivenRedisCleanedUp checks that a given Redis keeps none of the
// suite's keys.
func TestGivenRedisCleanedUp(t *testing.T) {
	ctx := context.Background()
	url := testenv.RedisURL(t)
	r, err := startRedis(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newRedisClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, k := range []string{"a", "b:c"} {
		if err := c.Set(ctx, r.Prefix+k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	keys, err := c.Keys(ctx, r.Prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys %v, %v after Close", keys, err)
	}
}
