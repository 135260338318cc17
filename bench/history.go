package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/history"
	"github.com/whenthen/whenthen/history/api"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/history/check"
	"github.com/whenthen/whenthen/history/query"
	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/history/web"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/rules"
)

// HistoryOptions size the run history benchmark (`whenthen bench
// --scenarios history`): the write rate of PostgreSQL, the service
// draining runs from Kafka, the API's queries over a large table, and
// the embedded store's page.
type HistoryOptions struct {
	// PostgresURL is a server whose user may create databases; the
	// benchmark creates whenthen_bench_history_RANDOM and drops it at
	// the end (unless Keep).
	PostgresURL string
	Keep        bool
	// Workload is the rule set whose automations the runs belong to;
	// default 1,000 automations in one workspace.
	Workload gen.Workload
	// WriteRuns are written through store.Write in batches of WriteBatch;
	// defaults 400,000 and 1,000.
	WriteRuns  int
	WriteBatch int
	// ServiceRuns are produced to Kafka (4 partitions) and drained by the
	// service; default 200,000.
	ServiceRuns int
	// Rows is the size of the runs table the queries run on; default
	// 10,000,000, spread over 30 days.
	Rows int
	// Queries is how many times each API query runs; default 200.
	Queries int
	// DevRuns fill the embedded store whose overview page is timed;
	// default 20,000 over the examples' 10 automations.
	DevRuns int
}

func (o HistoryOptions) withDefaults() HistoryOptions {
	if o.Workload.Automations == 0 {
		o.Workload = gen.Workload{Automations: 1000, Workspaces: 1, Seed: 1}
	}
	if o.WriteRuns == 0 {
		o.WriteRuns = 400_000
	}
	if o.WriteBatch == 0 {
		o.WriteBatch = 1000
	}
	if o.ServiceRuns == 0 {
		o.ServiceRuns = 200_000
	}
	if o.Rows == 0 {
		o.Rows = 10_000_000
	}
	if o.Queries == 0 {
		o.Queries = 200
	}
	if o.DevRuns == 0 {
		o.DevRuns = 20_000
	}
	return o
}

// HistoryResult is what the history benchmark measured.
type HistoryResult struct {
	Automations int `json:"automations"`
	// Writes: store.Write into PostgreSQL, one transaction per batch.
	WriteRuns       int     `json:"write_runs"`
	WriteBatch      int     `json:"write_batch"`
	WriteRunsPerSec float64 `json:"write_runs_per_sec"`
	// The service draining ServiceRuns from Kafka into PostgreSQL.
	ServiceRuns       int     `json:"service_runs"`
	ServiceRunsPerSec float64 `json:"service_runs_per_sec"`
	// The table the queries ran on, and how long seeding it took.
	Rows        int64         `json:"rows"`
	SeedSeconds float64       `json:"seed_seconds"`
	TableMB     float64       `json:"table_mb"`
	IndexMB     float64       `json:"index_mb"`
	Queries     []QueryTiming `json:"queries"`
	// Plans holds EXPLAIN (ANALYZE) of the runs queries on the large
	// table, by query name.
	Plans map[string]string `json:"plans,omitempty"`
	// The embedded store: the overview page of a dev-sized history.
	DevRuns      int     `json:"dev_runs"`
	DevPageP50MS float64 `json:"dev_page_p50_ms"`
	DevPageP95MS float64 `json:"dev_page_p95_ms"`
}

// QueryTiming is one API query's latency, through HTTP on loopback.
type QueryTiming struct {
	Name  string  `json:"name"`
	Path  string  `json:"path"`
	N     int     `json:"n"`
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	MaxMS float64 `json:"max_ms"`
}

// runGen makes run records as the engine writes them for a workload:
// the workload's workspaces, automations and their condition clauses,
// record ids from its event stream's pools, a why with each clause and
// the values it reads, one action per completed run.
type runGen struct {
	r     *mrand.Rand
	autos []*rules.Automation
	// fields are the fields each clause of each automation reads, parsed
	// once.
	fields map[*rules.Automation][][]string
	t0     time.Time
	span   time.Duration
}

func newRunGen(w gen.Workload, t0 time.Time, span time.Duration) (*runGen, error) {
	c, err := rules.NewCompiler(rules.CompilerOptions{Schema: crm.DefaultSchema()})
	if err != nil {
		return nil, err
	}
	set, err := c.Compile(w.Rules())
	if err != nil {
		return nil, err
	}
	g := &runGen{r: mrand.New(mrand.NewSource(w.Seed + 7)), t0: t0, span: span, fields: map[*rules.Automation][][]string{}}
	for _, a := range set.Automations {
		if a.Trigger.Object == "" {
			continue
		}
		g.autos = append(g.autos, a)
		if a.If != nil {
			for _, cl := range a.If.Clauses {
				g.fields[a] = append(g.fields[a], check.FieldsRead(cl.Text))
			}
		}
	}
	if len(g.autos) == 0 {
		return nil, errors.New("bench: the workload has no record automations")
	}
	return g, nil
}

var recordPools = map[string]struct {
	prefix string
	n      int
}{"opportunity": {"006-", 50000}, "account": {"001-", 5000}, "lead": {"00Q-", 100000}, "contact": {"003-", 20000}}

// next returns the i-th run, at a time spread evenly over the span.
func (g *runGen) next(i, total int) actions.Run {
	a := g.autos[g.r.Intn(len(g.autos))]
	pool := recordPools[a.Trigger.Object]
	rec := fmt.Sprintf("%s%d", pool.prefix, g.r.Intn(pool.n))
	ev := fmt.Sprintf("evt-%d", i)
	at := g.t0.Add(time.Duration(float64(g.span) * float64(i) / float64(total)))
	run := actions.Run{RunID: actions.RunID(a.Workspace, a.ID, ev), Workspace: a.Workspace, AutomationID: a.ID, Trigger: "record",
		EventID: ev, Object: a.Trigger.Object, RecordID: rec, RanAt: at, Outcome: actions.OutcomeCompleted, ActionIDs: []string{}}
	switch k := g.r.Intn(100); {
	case k < 6:
		run.Outcome, run.Reason = actions.OutcomeSkipped, actions.ReasonCooldown
	case k < 10:
		run.Outcome, run.Reason = actions.OutcomeSkipped, actions.ReasonDuplicate
	case k < 12:
		run.Outcome, run.Reason = actions.OutcomeSkipped, actions.ReasonAlreadyEnrolled
	case k < 13:
		run.Outcome, run.Reason, run.Error = actions.OutcomeError, actions.ReasonEvalError, "no such key: amount"
	default:
		run.ActionIDs = []string{actions.ActionID(a.Workspace, a.ID, ev, actions.TypeBrief)}
	}
	if a.If != nil {
		why := &actions.Why{Clauses: []actions.Clause{}, Values: []actions.Value{}}
		t := true
		for i, cl := range a.If.Clauses {
			why.Clauses = append(why.Clauses, actions.Clause{Text: cl.Text, Result: &t})
			for _, f := range g.fields[a][i] {
				why.Values = append(why.Values, actions.Value{Field: f, Value: json.RawMessage(fmt.Sprintf(`"v-%d"`, g.r.Intn(100)))})
			}
		}
		run.Why = why
	}
	return run
}

// RunHistory runs the history benchmark.
func RunHistory(ctx context.Context, o HistoryOptions, log *slog.Logger) (*HistoryResult, error) {
	o = o.withDefaults()
	if o.PostgresURL == "" {
		return nil, errors.New("history: a PostgreSQL URL is required (--history-db)")
	}
	res := &HistoryResult{Automations: o.Workload.Automations, WriteRuns: o.WriteRuns, WriteBatch: o.WriteBatch,
		ServiceRuns: o.ServiceRuns, DevRuns: o.DevRuns, Plans: map[string]string{}}

	dbURL, drop, err := createDatabase(ctx, o.PostgresURL, o.Keep)
	if err != nil {
		return nil, err
	}
	defer drop()

	log.Info("history: writes", "runs", o.WriteRuns, "batch", o.WriteBatch)
	if res.WriteRunsPerSec, err = benchWrites(ctx, dbURL, o); err != nil {
		return nil, fmt.Errorf("history writes: %w", err)
	}
	log.Info("history: the service draining Kafka", "runs", o.ServiceRuns)
	if res.ServiceRunsPerSec, err = benchService(ctx, o); err != nil {
		return nil, fmt.Errorf("history service: %w", err)
	}
	log.Info("history: seeding the large table", "rows", o.Rows)
	big, dropBig, err := createDatabase(ctx, o.PostgresURL, o.Keep)
	if err != nil {
		return nil, err
	}
	defer dropBig()
	start := time.Now()
	if err := seed(ctx, big, o); err != nil {
		return nil, fmt.Errorf("history seed: %w", err)
	}
	res.SeedSeconds = time.Since(start).Seconds()
	log.Info("history: seeded", "seconds", int(res.SeedSeconds))
	if err := benchQueries(ctx, big, o, res); err != nil {
		return nil, fmt.Errorf("history queries: %w", err)
	}
	log.Info("history: the embedded store's page", "runs", o.DevRuns)
	if res.DevPageP50MS, res.DevPageP95MS, err = benchDevPage(ctx, o); err != nil {
		return nil, fmt.Errorf("history dev page: %w", err)
	}
	return res, nil
}

// createDatabase creates a database for one part of the benchmark and
// returns its URL and how to drop it.
func createDatabase(ctx context.Context, admin string, keep bool) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("history: PostgreSQL: %w", err)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "whenthen_bench_history_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	conn.Close(ctx)
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		if keep {
			return
		}
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// benchWrites writes WriteRuns runs through the store, as the consumer
// does (decoded from their JSON), and returns runs per second.
func benchWrites(ctx context.Context, dbURL string, o HistoryOptions) (float64, error) {
	st, err := history.OpenStore(ctx, dbURL, nil, nil)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	g, err := newRunGen(o.Workload, time.Now().Add(-24*time.Hour), 24*time.Hour)
	if err != nil {
		return 0, err
	}
	// Encode first: the engine's encoder is not what is measured.
	raws := make([][]byte, o.WriteRuns)
	for i := range raws {
		r := g.next(i, o.WriteRuns)
		raws[i] = r.AppendJSON(nil)
	}
	start := time.Now()
	for i := 0; i < len(raws); i += o.WriteBatch {
		var b store.Batch
		for _, raw := range raws[i:min(i+o.WriteBatch, len(raws))] {
			row, err := store.DecodeRun(raw)
			if err != nil {
				return 0, err
			}
			b.Runs = append(b.Runs, row)
		}
		if _, err := st.Write(ctx, &b); err != nil {
			return 0, err
		}
	}
	return float64(len(raws)) / time.Since(start).Seconds(), nil
}

// benchService produces ServiceRuns runs to an in-memory broker and
// times the history service storing them all in PostgreSQL.
func benchService(ctx context.Context, o HistoryOptions) (float64, error) {
	dbURL, drop, err := createDatabase(ctx, o.PostgresURL, o.Keep)
	if err != nil {
		return 0, err
	}
	defer drop()
	const partitions = 4
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions), kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(partitions, actions.DefaultRunsTopic, actions.DefaultActionsTopic, actions.DefaultOutcomesTopic, actions.DefaultDLQTopic))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	g, err := newRunGen(o.Workload, time.Now().Add(-time.Hour), time.Hour)
	if err != nil {
		return 0, err
	}
	w := &kafka.Writer{Addr: kafka.TCP(c.ListenAddrs()...), Topic: actions.DefaultRunsTopic, Balancer: &kafka.Hash{},
		BatchSize: 5000, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	msgs := make([]kafka.Message, 0, 5000)
	for i := range o.ServiceRuns {
		r := g.next(i, o.ServiceRuns)
		msgs = append(msgs, kafka.Message{Key: []byte(r.Key()), Value: r.AppendJSON(nil)})
		if len(msgs) == cap(msgs) || i == o.ServiceRuns-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return 0, err
			}
			msgs = msgs[:0]
		}
	}
	_ = w.Close()
	svc, err := history.New(history.Options{
		Kafka: daemon.KafkaOptions{Brokers: c.ListenAddrs(), MaxWait: 100 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
			CommitInterval: 200 * time.Millisecond},
		DB: dbURL, Listen: "127.0.0.1:0", LogOutput: io.Discard, LogLevel: "error", RetentionInterval: -1,
	})
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- svc.Run(rctx) }()
	defer func() { cancel(); <-done; _ = svc.Close() }()
	wsName := gen.WorkspaceName(0)
	for {
		st, err := svc.Store().Automations(ctx, wsName, "", time.Now().Add(-3*time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			return 0, err
		}
		var n int64
		for _, a := range st {
			n += a.Total
		}
		if n >= int64(o.ServiceRuns) {
			return float64(n) / time.Since(start).Seconds(), nil
		}
		if time.Since(start) > 10*time.Minute {
			return 0, fmt.Errorf("the service stored %d of %d runs in 10 minutes", n, o.ServiceRuns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seed fills the runs table with Rows runs over 30 days with COPY, the
// runs' indexes dropped meanwhile and built again after, then the hourly
// counts and last runs from them, and actions and outcomes of every
// tenth completed run.
func seed(ctx context.Context, dbURL string, o HistoryOptions) error {
	st, err := history.OpenStore(ctx, dbURL, nil, nil) // migrations
	if err != nil {
		return err
	}
	st.Close()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["maintenance_work_mem"] = "1GB"
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	rows, err := pool.Query(ctx, `SELECT indexdef FROM pg_indexes WHERE tablename = 'runs' AND indexname <> 'runs_pkey'`)
	if err != nil {
		return err
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, stmt := range []string{`ALTER TABLE runs DROP CONSTRAINT runs_pkey`, `DROP INDEX runs_time, runs_automation_time, runs_record_time,
		runs_event, runs_outcome_time, runs_automation_outcome_time, runs_reason_time`} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	g, err := newRunGen(o.Workload, time.Now().Add(-30*24*time.Hour), 30*24*time.Hour)
	if err != nil {
		return err
	}
	// Two COPY streams, each a half of the rows.
	errs := make(chan error, 2)
	half := o.Rows / 2
	for part := range 2 {
		gen := *g
		gen.r = mrand.New(mrand.NewSource(int64(part) + 11))
		go func() {
			src := &runSource{g: &gen, from: part * half, to: min((part+1)*half, o.Rows), total: o.Rows}
			if part == 1 {
				src.to = o.Rows
			}
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"runs"},
				[]string{"run_id", "workspace", "automation_id", "event_id", "object", "record_id", "ran_at", "outcome", "reason", "doc"}, src)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			return err
		}
	}
	post := []string{`ALTER TABLE runs ADD PRIMARY KEY (run_id)`}
	post = append(post, defs...)
	post = append(post,
		`INSERT INTO run_counts SELECT workspace, automation_id, date_trunc('hour', ran_at), outcome, reason, count(*) FROM runs GROUP BY 1, 2, 3, 4, 5`,
		`INSERT INTO automation_latest SELECT DISTINCT ON (workspace, automation_id) workspace, automation_id, 'run', run_id, ran_at, outcome, reason, ''
		 FROM runs ORDER BY workspace, automation_id, ran_at DESC, run_id DESC`,
		`INSERT INTO automation_latest SELECT DISTINCT ON (workspace, automation_id) workspace, automation_id, 'error', run_id, ran_at, outcome, reason, doc->>'error'
		 FROM runs WHERE outcome = 'error' ORDER BY workspace, automation_id, ran_at DESC, run_id DESC`,
		`INSERT INTO actions SELECT doc->'action_ids'->>0, workspace, run_id, automation_id, ran_at,
		   json_build_object('action_id', doc->'action_ids'->>0, 'workspace', workspace, 'automation_id', automation_id, 'type', 'brief',
		     'brief', json_build_object('kind', 'opportunity', 'recipients', json_build_array('user:u-7')), 'object', object, 'record_id', record_id,
		     'event_id', event_id, 'event_time', ran_at, 'fired_at', ran_at, 'run_id', run_id)
		 FROM runs WHERE outcome = 'completed' AND hashtext(run_id) % 10 = 0`,
		`INSERT INTO outcomes SELECT action_id, 'webhook', workspace, run_id, 'delivered', true, fired_at,
		   json_build_object('action_id', action_id, 'run_id', run_id, 'workspace', workspace, 'automation_id', automation_id, 'type', 'brief',
		     'destination', 'webhook', 'status', 'delivered', 'attempts', 1, 'duration_ms', 12, 'at', fired_at)
		 FROM actions`,
		`VACUUM ANALYZE runs`, `VACUUM ANALYZE run_counts`, `VACUUM ANALYZE automation_latest`, `VACUUM ANALYZE actions`, `VACUUM ANALYZE outcomes`)
	for _, stmt := range post {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%.60s…: %w", stmt, err)
		}
	}
	return nil
}

// runSource feeds COPY with generated runs.
type runSource struct {
	g              *runGen
	from, to, next int
	total          int
	row            []any
	err            error
}

func (s *runSource) Next() bool {
	if s.next == 0 {
		s.next = s.from
	}
	if s.next >= s.to {
		return false
	}
	r := s.g.next(s.next, s.total)
	s.next++
	s.row = []any{r.RunID, r.Workspace, r.AutomationID, r.EventID, r.Object, r.RecordID, r.RanAt.UTC().Truncate(time.Microsecond),
		r.Outcome, r.Reason, string(r.AppendJSON(nil))}
	return true
}

func (s *runSource) Values() ([]any, error) { return s.row, nil }
func (s *runSource) Err() error             { return s.err }

// benchQueries runs each API query Queries times over HTTP against the
// large table, with parameters drawn from it, and explains the runs
// queries.
func benchQueries(ctx context.Context, dbURL string, o HistoryOptions, res *HistoryResult) error {
	st, err := history.OpenStore(ctx, dbURL, nil, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.QueryRow(ctx, `SELECT count(*), pg_table_size('runs') / 1048576.0, pg_indexes_size('runs') / 1048576.0 FROM runs`).
		Scan(&res.Rows, &res.TableMB, &res.IndexMB); err != nil {
		return err
	}
	sample := func(q string) ([]string, error) {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	autos, err := sample(`SELECT DISTINCT automation_id FROM automation_latest LIMIT 200`)
	if err != nil {
		return err
	}
	picks, err := sample(`SELECT run_id || ' ' || event_id || ' ' || object || ' ' || record_id FROM runs TABLESAMPLE SYSTEM (0.05) LIMIT 500`)
	if err != nil || len(picks) == 0 || len(autos) == 0 {
		return fmt.Errorf("sampling the table: %v", err)
	}
	ws := gen.WorkspaceName(0)
	tok, hash := auth.NewToken()
	au, err := auth.New(auth.Options{Tokens: []auth.Token{{Name: "bench", SHA256: hash, Workspaces: []string{auth.AllWorkspaces}}}})
	if err != nil {
		return err
	}
	q := query.New(st, func() (*rules.Compiler, *rules.Set) { return nil, nil }, check.New(nil, nil, nil, nil), nil)
	mux := http.NewServeMux()
	api.New(q, au, nil).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	r := mrand.New(mrand.NewSource(3))
	pick := func() []string { return strings.Fields(picks[r.Intn(len(picks))]) }
	auto := func() string { return url.QueryEscape(autos[r.Intn(len(autos))]) }
	base := "/api/v1/workspaces/" + ws
	var cursorDeep string
	{ // a cursor 20 pages deep, for the deep page query
		path := base + "/runs?limit=100"
		for range 20 {
			var page store.RunPage
			if err := getJSON(ctx, srv.URL+path, tok, &page); err != nil {
				return err
			}
			path = base + "/runs?limit=100&cursor=" + page.NextCursor
			cursorDeep = page.NextCursor
		}
	}
	queries := []struct {
		name string
		path func() string
	}{
		{"runs, newest 50", func() string { return base + "/runs" }},
		{"runs, 20 pages of 100 deep", func() string { return base + "/runs?limit=100&cursor=" + cursorDeep }},
		{"runs of an automation", func() string { return base + "/runs?automation=" + auto() }},
		{"runs of an automation, skipped", func() string { return base + "/runs?outcome=skipped&automation=" + auto() }},
		{"runs of an automation, last 24h", func() string { return base + "/runs?since=24h&automation=" + auto() }},
		{"runs with outcome error", func() string { return base + "/runs?outcome=error" }},
		{"runs with reason already_enrolled", func() string { return base + "/runs?reason=already_enrolled" }},
		{"runs of an event", func() string { return base + "/runs?event=" + url.QueryEscape(pick()[1]) }},
		{"runs between two days", func() string {
			d := time.Now().Add(-time.Duration(1+r.Intn(28)) * 24 * time.Hour)
			return base + "/runs?since=" + url.QueryEscape(d.Format(time.RFC3339)) + "&until=" + url.QueryEscape(d.Add(24*time.Hour).Format(time.RFC3339))
		}},
		{"a record's timeline", func() string {
			p := pick()
			return base + "/records/" + p[2] + "/" + url.PathEscape(p[3]) + "/runs"
		}},
		{"a run with its actions and outcomes", func() string { return base + "/runs/" + pick()[0] }},
		{"automations, 24h", func() string { return base + "/automations?window=24h" }},
		{"automations, 7 days", func() string { return base + "/automations?window=168h" }},
		{"one automation, 7 days by hour", func() string { return base + "/automations/" + auto() + "?window=168h" }},
	}
	for _, qd := range queries {
		var times []time.Duration
		var path string
		for i := range o.Queries + 5 {
			path = qd.path()
			start := time.Now()
			var v any
			if err := getJSON(ctx, srv.URL+path, tok, &v); err != nil {
				return fmt.Errorf("%s: %w", qd.name, err)
			}
			if i >= 5 { // warm-up
				times = append(times, time.Since(start))
			}
		}
		slices.Sort(times)
		res.Queries = append(res.Queries, QueryTiming{Name: qd.name, Path: strings.TrimPrefix(path, base), N: len(times),
			P50MS: ms(percentile(times, 0.5)), P95MS: ms(percentile(times, 0.95)), MaxMS: ms(times[len(times)-1])})
	}
	// The plans of the runs query for the main filter shapes.
	p := pick()
	for name, args := range map[string][]any{
		"newest":                 {ws, "", "", "", "", "", ""},
		"automation":             {ws, autos[0], "", "", "", "", ""},
		"automation and outcome": {ws, autos[0], "", "", "skipped", "", ""},
		"outcome error":          {ws, "", "", "", "error", "", ""},
		"record":                 {ws, "", p[2], p[3], "", "", ""},
		"event":                  {ws, "", "", "", "", "", p[1]},
	} {
		plan, err := explainRuns(ctx, pool, args)
		if err != nil {
			return fmt.Errorf("explain %s: %w", name, err)
		}
		res.Plans[name] = plan
	}
	return nil
}

// explainRuns explains the store's runs query (postgres.listRuns, the
// same text) with args, unprepared as the driver sends it.
func explainRuns(ctx context.Context, pool *pgxpool.Pool, args []any) (string, error) {
	const q = `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT run_id, workspace, automation_id, event_id, object, record_id, ran_at, outcome, reason, doc
FROM runs
WHERE workspace = $1::text
  AND ($2::text = '' OR automation_id = $2::text)
  AND ($3::text = '' OR object = $3::text)
  AND ($4::text = '' OR record_id = $4::text)
  AND ($5::text = '' OR outcome = $5::text)
  AND ($6::text = '' OR reason = $6::text)
  AND ($7::text = '' OR event_id = $7::text)
  AND ran_at >= $8::timestamptz
  AND (ran_at, run_id) < ($9::timestamptz, $10::text)
ORDER BY ran_at DESC, run_id DESC
LIMIT $11::integer`
	all := append(slices.Clone(args), store.MinTime, store.MaxTime, "", 51)
	rows, err := pool.Query(ctx, q, append([]any{pgx.QueryExecModeExec}, all...)...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

func getJSON(ctx context.Context, u, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("GET %s: %s %s", u, res.Status, b)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// benchDevPage fills an embedded store as `whenthen dev` would hold a
// long session (DevRuns runs of the examples' ten automations over a
// day) and times the overview page, signed in, through HTTP.
func benchDevPage(ctx context.Context, o HistoryOptions) (p50, p95 float64, err error) {
	dir, err := os.MkdirTemp("", "whenthen-bench-history-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	st, err := history.OpenStore(ctx, "sqlite:"+filepath.Join(dir, "history.db"), nil, nil)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	w := gen.Workload{Automations: 10, Workspaces: 1, Seed: 5}
	g, err := newRunGen(w, time.Now().Add(-24*time.Hour), 24*time.Hour)
	if err != nil {
		return 0, 0, err
	}
	for i := 0; i < o.DevRuns; i += 1000 {
		var b store.Batch
		for j := i; j < min(i+1000, o.DevRuns); j++ {
			r := g.next(j, o.DevRuns)
			row, err := store.DecodeRun(r.AppendJSON(nil))
			if err != nil {
				return 0, 0, err
			}
			b.Runs = append(b.Runs, row)
		}
		if _, err := st.Write(ctx, &b); err != nil {
			return 0, 0, err
		}
	}
	tok, hash := auth.NewToken()
	au, err := auth.New(auth.Options{Tokens: []auth.Token{{Name: "dev", SHA256: hash, Workspaces: []string{auth.AllWorkspaces}}}})
	if err != nil {
		return 0, 0, err
	}
	q := query.New(st, func() (*rules.Compiler, *rules.Set) { return nil, nil }, check.New(nil, nil, nil, nil), nil)
	pages, err := web.New(q, au, nil)
	if err != nil {
		return 0, 0, err
	}
	mux := http.NewServeMux()
	pages.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var times []time.Duration
	for i := range 105 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/w/"+gen.WorkspaceName(0)+"/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		start := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("the overview page: %s", res.Status)
		}
		if i >= 5 {
			times = append(times, time.Since(start))
		}
	}
	slices.Sort(times)
	return ms(percentile(times, 0.5)), ms(percentile(times, 0.95)), nil
}

// historyGoals are the targets for the history.
func historyGoals(h *HistoryResult) []Goal {
	out := []Goal{
		{Name: "history: runs written into PostgreSQL", Target: ">= 50000", Value: h.WriteRunsPerSec, Unit: "runs/s", Met: h.WriteRunsPerSec >= 50_000},
		{Name: "history: embedded store, the dev overview page p95", Target: "< 200 ms", Value: h.DevPageP95MS, Unit: "ms", Met: h.DevPageP95MS < 200},
	}
	worst := QueryTiming{}
	for _, q := range h.Queries {
		if q.P95MS > worst.P95MS {
			worst = q
		}
	}
	out = append(out, Goal{Name: fmt.Sprintf("history: slowest API query p95 over %s runs (%s)", count(int(h.Rows)), worst.Name),
		Target: "< 100 ms", Value: worst.P95MS, Unit: "ms", Met: worst.P95MS < 100})
	return out
}
