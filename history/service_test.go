package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/history"
	"github.com/whenthen/whenthen/history/api"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/history/store/storetest"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var topics = []string{actions.DefaultRunsTopic, actions.DefaultActionsTopic, actions.DefaultOutcomesTopic, actions.DefaultDLQTopic}

// env is one history service on a kfake broker, with two tokens: acme's
// and one for every workspace.
type env struct {
	t       *testing.T
	kafka   *testenv.Cluster
	svc     *history.Service
	base    string
	acme    string // token of workspace acme (and no-workspace)
	all     string // token of every workspace
	started time.Time
}

func examplesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "examples")
}

// databases returns the DB settings every service test runs against:
// a fresh SQLite file and a fresh PostgreSQL database.
func databases(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "history.db") },
		"postgres": func(t *testing.T) string { return testenv.Postgres(t) },
	}
}

func start(t *testing.T, db string, cluster *testenv.Cluster, tweak func(*history.Options)) *env {
	t.Helper()
	if cluster == nil {
		cluster = testenv.Kafka(t, topics...)
	}
	acme, acmeHash := auth.NewToken()
	all, allHash := auth.NewToken()
	opts := history.Options{
		Kafka: daemon.KafkaOptions{Brokers: cluster.Addrs(), MaxWait: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
			SessionTimeout: 2 * time.Second, CommitInterval: 50 * time.Millisecond, LagInterval: 200 * time.Millisecond},
		DB:     db,
		Rules:  []string{filepath.Join(examplesDir(), "automations")},
		Schema: filepath.Join(examplesDir(), "schema.yaml"),
		Listen: "127.0.0.1:0",
		Tokens: []auth.Token{{Name: "revops-acme", SHA256: acmeHash, Workspaces: []string{"acme", auth.NoWorkspace}},
			{Name: "ops", SHA256: allHash, Workspaces: []string{auth.AllWorkspaces}}},
		LogFormat: "text", LogLevel: "error", LogOutput: testLog(), ShutdownTimeout: 10 * time.Second,
	}
	if tweak != nil {
		tweak(&opts)
	}
	svc, err := history.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = svc.Close()
	})
	return &env{t: t, kafka: cluster, svc: svc, base: "http://" + svc.Addr(), acme: acme, all: all, started: time.Now()}
}

// produce writes records to topic as the engine and deliver do: each
// keyed as docs/outputs.md says, valued by its JSON.
func (e *env) produce(topic string, recs ...any) {
	e.t.Helper()
	var msgs []kafka.Message
	for _, r := range recs {
		var key string
		var val []byte
		switch r := r.(type) {
		case actions.Run:
			key, val = r.Key(), r.AppendJSON(nil)
		case actions.Action:
			key, val = r.Key(), r.AppendJSON(nil)
		case actions.Outcome:
			b, err := json.Marshal(r)
			if err != nil {
				e.t.Fatal(err)
			}
			key, val = r.Key(), b
		case []byte:
			key, val = "raw", r
		default:
			e.t.Fatalf("no record type %T", r)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: val})
	}
	e.kafka.Produce(e.t, topic, msgs...)
}

// get does a GET with token (none if ""), returning status and body.
func (e *env) get(token, path string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, b
}

func (e *env) getJSON(token, path string, v any) {
	e.t.Helper()
	code, b := e.get(token, path)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		e.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// waitRuns waits until the workspace lists n runs.
func (e *env) waitRuns(ws string, n int) []store.Run {
	e.t.Helper()
	var page store.RunPage
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.getJSON(e.all, "/api/v1/workspaces/"+ws+"/runs?limit=500", &page)
		if len(page.Runs) >= n {
			return page.Runs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("workspace %s: %d runs stored after 30s, want %d", ws, len(page.Runs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestService(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) { testService(t, db(t)) })
	}
}

func testService(t *testing.T, db string) {
	e := start(t, db, nil, nil)
	now := time.Now().UTC().Truncate(time.Millisecond)
	won := storetest.NewRun("acme", "closed-won-brief", "evt-0012", "opportunity", "O-2001", now.Add(-3*time.Minute), "completed", "")
	act := storetest.ActionOf(won)
	failed := storetest.OutcomeOf(act, "revops-email", actions.StatusFailed, now.Add(-2*time.Minute))
	dup := storetest.NewRun("acme", "closed-won-brief", "evt-0012b", "opportunity", "O-2001", now.Add(-2*time.Minute), "skipped", "duplicate")
	lead := storetest.NewRun("acme", "new-lead-nurture", "evt-0001", "lead", "L-1001", now.Add(-time.Minute), "completed", "")
	globex := storetest.NewRun("globex", "closed-won-brief", "evt-g1", "opportunity", "O-9", now.Add(-time.Minute), "completed", "")
	legacy := []byte(fmt.Sprintf(`{"run_id":"r-legacy","workspace":"acme","automation_id":"negotiation-brief","event_id":"evt-0010","object":"opportunity","record_id":"O-2001","ran_at":%q,"outcome":"completed","reason":"","action_ids":[]}`,
		now.Add(-4*time.Minute).Format(time.RFC3339Nano)))
	// Outcome before its action, action before its run: any order works.
	e.produce(actions.DefaultOutcomesTopic, failed)
	e.produce(actions.DefaultActionsTopic, act)
	e.produce(actions.DefaultRunsTopic, won, dup, lead, globex, legacy,
		[]byte(`{"run_id":"r-truncated","workspace":"acme"`), []byte(`{"workspace":"acme","automation_id":"x"}`), []byte(`not json`))
	e.produce(actions.DefaultOutcomesTopic, []byte(`{"action_id":"a-1","status":"delivered"}`))
	runs := e.waitRuns("acme", 4)

	t.Run("runs newest first with why and status", func(t *testing.T) {
		want := []string{lead.RunID, dup.RunID, won.RunID, "r-legacy"}
		if got := runIDs(runs); !slices.Equal(got, want) {
			t.Fatalf("runs %v, want %v", got, want)
		}
		if r := runs[2]; r.Why == nil || len(r.Why.Clauses) != 2 || r.Object != "opportunity" || len(r.ActionIDs) != 1 {
			t.Fatalf("closed-won run: %+v", r)
		}
		testenv.WaitFor(t, 30*time.Second, "the failed outcome to show in the run's status", func() bool {
			var page store.RunPage
			e.getJSON(e.acme, "/api/v1/workspaces/acme/runs?automation=closed-won-brief&outcome=completed", &page)
			return len(page.Runs) == 1 && page.Runs[0].Status == store.StatusDeliveryFailed
		})
		if runs[3].Why != nil || runs[3].Status != store.StatusCompleted {
			t.Fatalf("a run without why: %+v", runs[3])
		}
	})

	t.Run("run detail", func(t *testing.T) {
		var d store.RunDetail
		// The actions topic has its own consumer: wait for its record.
		testenv.WaitFor(t, 30*time.Second, "the action record", func() bool {
			e.getJSON(e.acme, "/api/v1/workspaces/acme/runs/"+won.RunID, &d)
			return len(d.Actions) == 1 && !d.Actions[0].Missing
		})
		if len(d.Actions) != 1 || d.Actions[0].Brief == nil || len(d.Actions[0].Outcomes) != 1 {
			t.Fatalf("detail: %+v", d)
		}
		o := d.Actions[0].Outcomes[0]
		if o.Status != "failed" || len(o.AttemptLog) != 3 || o.AttemptLog[1].Error != "dial tcp: i/o timeout" || d.Status != store.StatusDeliveryFailed {
			t.Fatalf("outcome %+v, status %s", o, d.Status)
		}
	})

	t.Run("record timeline", func(t *testing.T) {
		var page store.RunPage
		e.getJSON(e.acme, "/api/v1/workspaces/acme/records/opportunity/O-2001/runs", &page)
		if got := runIDs(page.Runs); !slices.Equal(got, []string{dup.RunID, won.RunID, "r-legacy"}) {
			t.Fatalf("timeline %v", got)
		}
	})

	t.Run("automations of the live rules", func(t *testing.T) {
		var list api.AutomationList
		e.getJSON(e.acme, "/api/v1/workspaces/acme/automations?window=24h&hourly=true", &list)
		byID := map[string]int{}
		for i, a := range list.Automations {
			byID[a.ID] = i
		}
		// Every automation of examples/ is listed, with runs or not.
		for _, id := range []string{"closed-won-brief", "new-lead-nurture", "renewal-30d", "upsell-flow", "stale-deal-nudge", "negotiation-brief"} {
			if _, ok := byID[id]; !ok {
				t.Fatalf("automation %s not listed: %+v", id, list.Automations)
			}
		}
		cw := list.Automations[byID["closed-won-brief"]]
		if cw.Runs != 2 || cw.ByOutcome["completed"] != 1 || cw.ByOutcome["skipped"] != 1 || cw.LastRun == nil || cw.LastRun.RunID != dup.RunID ||
			!cw.Live || cw.Condition == "" || len(cw.Hourly) == 0 || list.Window != "24h" {
			t.Fatalf("closed-won-brief: %+v", cw)
		}
		if up := list.Automations[byID["upsell-flow"]]; up.Runs != 0 || up.LastRun != nil {
			t.Fatalf("upsell-flow without runs: %+v", up)
		}
		var one map[string]any
		e.getJSON(e.acme, "/api/v1/workspaces/acme/automations/closed-won-brief?window=168h", &one)
		if one["runs"] != float64(2) || one["window"] != "168h" {
			t.Fatalf("one automation: %v", one)
		}
	})

	t.Run("access", func(t *testing.T) {
		for _, path := range []string{"/api/v1/workspaces", "/api/v1/workspaces/acme/runs", "/api/v1/workspaces/acme/runs/" + won.RunID,
			"/api/v1/workspaces/acme/automations", "/api/v1/workspaces/acme/automations/closed-won-brief/check?record=O-2001"} {
			if code, b := e.get("", path); code != http.StatusUnauthorized || !strings.Contains(string(b), "unauthorized") {
				t.Errorf("%s without a token: %d %s", path, code, b)
			}
			if code, _ := e.get("wth_not-a-token", path); code != http.StatusUnauthorized {
				t.Errorf("%s with an unknown token: %d", path, code)
			}
		}
		// globex exists, but acme's token does not cover it: the same 404
		// as a workspace that does not exist.
		codeG, bodyG := e.get(e.acme, "/api/v1/workspaces/globex/runs")
		codeN, bodyN := e.get(e.acme, "/api/v1/workspaces/nowhere/runs")
		if codeG != http.StatusNotFound || codeN != http.StatusNotFound || string(bodyG) != string(bodyN) {
			t.Fatalf("cross-workspace read: %d %s vs %d %s", codeG, bodyG, codeN, bodyN)
		}
		for _, path := range []string{"/api/v1/workspaces/globex/runs/" + globex.RunID, "/api/v1/workspaces/globex/automations",
			"/api/v1/workspaces/globex/records/opportunity/O-9/runs"} {
			if code, _ := e.get(e.acme, path); code != http.StatusNotFound {
				t.Errorf("%s with acme's token: %d", path, code)
			}
		}
		// globex's run read under acme: not found either.
		if code, _ := e.get(e.acme, "/api/v1/workspaces/acme/runs/"+globex.RunID); code != http.StatusNotFound {
			t.Errorf("globex's run under acme: %d", code)
		}
		var p store.RunPage
		e.getJSON(e.all, "/api/v1/workspaces/globex/runs", &p)
		if len(p.Runs) != 1 || p.Runs[0].RunID != globex.RunID {
			t.Fatalf("the all-workspaces token reads globex: %+v", p)
		}
		var wss struct {
			Workspaces []struct{ Name, Path string }
		}
		e.getJSON(e.acme, "/api/v1/workspaces", &wss)
		for _, w := range wss.Workspaces {
			if w.Name == "globex" {
				t.Fatalf("acme's token lists globex: %+v", wss)
			}
		}
	})

	t.Run("bad parameters name themselves", func(t *testing.T) {
		for path, param := range map[string]string{
			"/runs?limit=0": "limit", "/runs?limit=x": "limit", "/runs?outcome=done": "outcome", "/runs?since=yesterday": "since",
			"/runs?until=-5h": "until", "/runs?cursor=bogus": "cursor", "/runs?record=O-1": "object", "/runs?colour=red": "colour",
			"/automations?window=5m": "window", "/automations?window=9000h": "window", "/automations?hourly=yes": "hourly",
			"/runs?automation=a&automation=b": "automation", "/automations/closed-won-brief/check": "record",
			"/automations/closed-won-brief/check?object=lead&record=x": "object",
		} {
			code, b := e.get(e.acme, "/api/v1/workspaces/acme"+path)
			var apiErr api.Error
			_ = json.Unmarshal(b, &apiErr)
			if path == "/automations/closed-won-brief/check?object=lead&record=x" || path == "/automations/closed-won-brief/check" {
				// Without Redis the check is unavailable before it reads a record.
				if code != http.StatusBadRequest && code != http.StatusServiceUnavailable {
					t.Errorf("%s: %d %s", path, code, b)
				}
				continue
			}
			if code != http.StatusBadRequest || apiErr.Error.Parameter != param || !strings.Contains(apiErr.Error.Message, param) {
				t.Errorf("%s: %d %s, want a 400 naming %s", path, code, b, param)
			}
		}
		code, b := e.get(e.acme, "/api/v1/workspaces/acme/automations/closed-won-brief/check?record=O-2001")
		if code != http.StatusServiceUnavailable || !strings.Contains(string(b), "--redis-url") {
			t.Fatalf("check without Redis: %d %s", code, b)
		}
	})

	t.Run("sql injection in every filter", func(t *testing.T) {
		for _, inj := range []string{`' OR '1'='1`, `'; DROP TABLE runs; --`, `x' UNION SELECT * FROM runs --`, `%' OR 1=1 --`} {
			for _, param := range []string{"automation", "object", "reason", "event"} {
				var p store.RunPage
				e.getJSON(e.acme, "/api/v1/workspaces/acme/runs?"+param+"="+url.QueryEscape(inj), &p)
				if len(p.Runs) != 0 {
					t.Fatalf("%s=%q matched %d runs", param, inj, len(p.Runs))
				}
			}
			var p store.RunPage
			e.getJSON(e.acme, "/api/v1/workspaces/acme/records/opportunity/"+url.PathEscape(inj)+"/runs", &p)
			if len(p.Runs) != 0 {
				t.Fatalf("record %q matched", inj)
			}
			if code, _ := e.get(e.acme, "/api/v1/workspaces/acme/runs/"+url.PathEscape(inj)); code != http.StatusNotFound {
				t.Fatalf("run %q: %d", inj, code)
			}
			if code, _ := e.get(e.all, "/api/v1/workspaces/"+url.PathEscape(inj)+"/runs"); code != http.StatusOK {
				t.Fatalf("workspace %q: %d", inj, code)
			}
		}
		if got := e.waitRuns("acme", 4); len(got) != 4 {
			t.Fatalf("%d runs after the injections", len(got))
		}
	})

	t.Run("dead letters", func(t *testing.T) {
		testenv.WaitFor(t, 30*time.Second, "4 dead letters", func() bool { return e.kafka.Count(actions.DefaultDLQTopic) >= 4 })
		reasons := map[string]int{}
		for _, m := range e.kafka.ReadTopic(t, actions.DefaultDLQTopic) {
			reasons[testenv.Header(m, actions.HeaderDLQReason)]++
			if testenv.Header(m, actions.HeaderSourceTopic) == "" {
				t.Errorf("dead letter without its source: %v", m.Headers)
			}
		}
		if reasons["invalid_json"] != 2 || reasons["missing_field"] != 2 {
			t.Fatalf("dead letter reasons %v", reasons)
		}
		if got := testenv.Metric(t, e.svc.Gatherer(), "whenthen_history_dead_letters_total", "topic", actions.DefaultRunsTopic, "reason", "invalid_json"); got != 2 {
			t.Fatalf("dead letters counted %v, want 2", got)
		}
	})

	t.Run("redelivery stores nothing twice", func(t *testing.T) {
		e.produce(actions.DefaultRunsTopic, won, dup, lead, legacy)
		e.produce(actions.DefaultActionsTopic, act)
		marker := storetest.NewRun("acme", "new-lead-nurture", "evt-marker", "lead", "L-1002", now, "completed", "")
		e.produce(actions.DefaultRunsTopic, marker)
		runs := e.waitRuns("acme", 5)
		if len(runs) != 5 {
			t.Fatalf("%d runs after a redelivery, want 5", len(runs))
		}
		var list api.AutomationList
		e.getJSON(e.acme, "/api/v1/workspaces/acme/automations", &list)
		for _, a := range list.Automations {
			if a.ID == "closed-won-brief" && a.Runs != 2 {
				t.Fatalf("closed-won-brief counted %d runs after a redelivery, want 2", a.Runs)
			}
		}
	})

	t.Run("openapi covers every route", func(t *testing.T) {
		code, b := e.get("", "/api/v1/openapi.json")
		var doc struct {
			OpenAPI string                    `json:"openapi"`
			Paths   map[string]map[string]any `json:"paths"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
			t.Fatalf("openapi.json: %d", code)
		}
		var routes []string
		for _, r := range api.Routes {
			method, path, _ := strings.Cut(r, " ")
			routes = append(routes, path)
			if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
				t.Errorf("route %s is not in openapi.json", r)
			}
		}
		for p := range doc.Paths {
			if !slices.Contains(routes, p) {
				t.Errorf("openapi.json documents %s, which is not a route", p)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		code, b := e.get("", "/metrics")
		for _, want := range []string{`whenthen_history_rows_written_total{driver=`, `whenthen_consumer_lag{partition="0",topic="automations.runs"}`,
			`whenthen_history_http_request_duration_seconds_count{route="GET /api/v1/workspaces/{ws}/runs"}`, `whenthen_history_db_errors_total`} {
			if code != http.StatusOK || !strings.Contains(string(b), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if regexp.MustCompile(`route="[^"]*(O-2001|r-[0-9a-f]{32})`).Match(b) {
			t.Error("a metric label holds an id")
		}
		if code, b := e.get("", "/readyz"); code != http.StatusOK {
			t.Errorf("/readyz: %d %s", code, b)
		}
	})
}

func runIDs(runs []store.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.RunID
	}
	return out
}

// testLog is where the services' log goes: nowhere, unless
// WHENTHEN_TEST_LOG is set.
func testLog() io.Writer {
	if os.Getenv("WHENTHEN_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// TestRedisURLs: the Why not? check takes the engine's Redis in every
// form the engine does, a cluster's seeds too, and refuses others.
func TestRedisURLs(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"redis://127.0.0.1:6379/0", ""},
		{"rediss://127.0.0.1:6379/0", ""},
		{"redis+cluster://127.0.0.1:7000,127.0.0.1:7001", ""},
		{"rediss+cluster://127.0.0.1:7000", ""},
		{"http://127.0.0.1:6379", "redis URL"},
		{"redis://", "redis URL"},
	} {
		err := history.Options{Redis: daemon.RedisOptions{URL: c.url}}.Validate()
		var redisErr string
		for _, l := range strings.Split(fmt.Sprint(err), "\n") {
			if strings.Contains(strings.ToLower(l), "redis") {
				redisErr = l
			}
		}
		if (c.want == "") != (redisErr == "") || !strings.Contains(redisErr, c.want) {
			t.Errorf("%s: %q", c.url, redisErr)
		}
	}
}
