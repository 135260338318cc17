package authoring

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

// backtestFixture loads the example rules as the baseline and
// testdata/backtest/new as the new rules.
func backtestFixture(t *testing.T) BacktestOptions {
	t.Helper()
	s, err := crm.LoadSchema("../examples/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := rules.NewCompiler(rules.CompilerOptions{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	compile := func(path string) *rules.Set {
		srcs, err := rules.ReadFiles(path)
		if err != nil {
			t.Fatal(err)
		}
		set, err := c.Compile(srcs)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	base, next := compile("../examples/automations"), compile("testdata/backtest/new")
	dec, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	return BacktestOptions{Schema: s, Baseline: base, New: next, Decoder: dec}
}

func fileBacktest(t *testing.T, opts BacktestOptions) *BacktestReport {
	t.Helper()
	f, err := os.Open("testdata/backtest/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Backtest(context.Background(), opts, NewLineSource(f, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// diffSummary is "ID +added -removed" for each changed automation.
func diffSummary(rep *BacktestReport) string {
	var parts []string
	for _, d := range rep.Automations {
		if d.Changed() {
			parts = append(parts, d.ID+" +"+itoa(d.Added)+" -"+itoa(d.Removed)+" "+d.In)
		}
	}
	return strings.Join(parts, ", ")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestBacktestEvents: lowering a threshold adds actions, removing an
// automation removes its actions, a new automation adds its own.
func TestBacktestEvents(t *testing.T) {
	opts := backtestFixture(t)
	rep := fileBacktest(t, opts)
	want := "closed-won-brief +1 -0 both, hot-lead-fast-track +1 -0 both, negotiation-brief +0 -2 baseline, partner-lead-intro +1 -0 new"
	if got := diffSummary(rep); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if rep.Events != 11 || rep.DeadLetters != 1 || rep.DeadLetter[0].Where != "events.jsonl:11" || rep.DeadLetter[0].Reason != "invalid_json" ||
		rep.Baseline.Actions != 10 || rep.New.Actions != 11 || rep.Added != 3 || rep.Removed != 2 {
		t.Fatalf("totals: %+v", rep)
	}
	var ex struct {
		AutomationID string `json:"automation_id"`
		EventID      string `json:"event_id"`
		RecordID     string `json:"record_id"`
	}
	if err := json.Unmarshal(rep.Automations[0].AddedExamples[0], &ex); err != nil || ex.AutomationID != "closed-won-brief" || ex.EventID != "o5" || ex.RecordID != "006-1" {
		t.Fatalf("example %+v, %v", ex, err)
	}
	// The same rules on both sides: no difference.
	opts.New = opts.Baseline
	if rep := fileBacktest(t, opts); rep.Added != 0 || rep.Removed != 0 || diffSummary(rep) != "" {
		t.Fatalf("same rules: %s", diffSummary(rep))
	}
}

// TestBacktestExamples: at most Examples actions are kept per automation.
func TestBacktestExamples(t *testing.T) {
	opts := backtestFixture(t)
	opts.New, opts.Baseline = opts.Baseline, opts.New // removed becomes added
	opts.Examples = 1
	rep := fileBacktest(t, opts)
	for _, d := range rep.Automations {
		if d.ID == "negotiation-brief" && (d.Added != 2 || len(d.AddedExamples) != 1 || d.In != "new") {
			t.Fatalf("%+v", d)
		}
	}
}

// produceHistory writes the events of testdata/backtest/events.jsonl to
// topic, keyed by record id, timestamped with their event time, over two
// partitions; an undecodable line gets the time of the line before.
func produceHistory(t *testing.T, addrs []string, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(addrs...), Topic: topic, BatchTimeout: 10 * time.Millisecond, RequiredAcks: kafka.RequireAll,
		// Leads on partition 1, everything else on 0.
		Balancer: kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
			if bytes.HasPrefix(m.Key, []byte("00Q")) {
				return partitions[1]
			}
			return partitions[0]
		})}
	defer w.Close()
	data, err := os.ReadFile("testdata/backtest/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var ev struct {
			Time   time.Time `json:"time"`
			Record struct {
				ID string `json:"id"`
			} `json:"record"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			last = ev.Time
		}
		// One message per write, so that each gets its own timestamp.
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(ev.Record.ID), Value: append([]byte(nil), sc.Bytes()...), Time: last}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBacktestKafka reads the history from a two-partition topic without a
// consumer group: the result equals the file's, a time window reads only
// its messages, and the broker sees no group, commit or topic request: an
// existing group's offsets are untouched.
func TestBacktestKafka(t *testing.T) {
	const topic, group = "crm.events", "whenthen"
	c := testenv.Kafka(t)
	if err := c.CreateTopic(topic, 2, nil); err != nil {
		t.Fatal(err)
	}
	produceHistory(t, c.Addrs(), topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The engine's group has consumed and committed part of partition 0.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Addrs(), GroupID: group, Topic: topic, MaxWait: 100 * time.Millisecond})
	for range 3 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	commits := c.GroupInfo(group).Commits

	var mu sync.Mutex
	seen := map[string]int{}
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		seen[kmsg.NameForKey(req.Key())]++
		mu.Unlock()
		return nil, nil, false
	})

	backtest := func(from, to time.Time) *BacktestReport {
		t.Helper()
		src, err := NewKafkaSource(ctx, KafkaOptions{Brokers: c.Addrs(), Topic: topic, From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		rep, err := Backtest(ctx, backtestFixture(t), src)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	all := backtest(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{})
	want := fileBacktest(t, backtestFixture(t))
	want.DeadLetter[0].Where = "crm.events/0@6" // the file's line 11: the 7th message of partition 0
	gotJSON, _ := json.Marshal(all)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("from Kafka:\n%s\nfrom the file:\n%s", gotJSON, wantJSON)
	}

	window := backtest(time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 10, 9, 15, 0, 0, time.UTC))
	// o3, o4, l3, l4, o5. Without o1 and o2 before the window, the partial
	// updates know no owner or amount: negotiation-brief runs without
	// recipients and closed-won-brief does not fire, in either set.
	if window.Events != 5 || window.DeadLetters != 0 {
		t.Fatalf("window: %d events, %d dead letters, want 5 and 0", window.Events, window.DeadLetters)
	}
	if got := diffSummary(window); got != "hot-lead-fast-track +1 -0 both" {
		t.Fatalf("window: %s", got)
	}

	if empty := backtest(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}); empty.Events != 0 {
		t.Fatalf("after the last message: %d events", empty.Events)
	}
	if _, err := NewKafkaSource(ctx, KafkaOptions{Brokers: c.Addrs(), Topic: "nope", From: time.Now()}); err == nil || !strings.Contains(err.Error(), `topic "nope"`) {
		t.Fatalf("missing topic: %v", err)
	}

	mu.Lock()
	var names []string
	for k := range seen {
		names = append(names, k)
	}
	mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		switch n {
		case "ApiVersions", "Metadata", "ListOffsets", "Fetch":
		default:
			t.Errorf("the backtest sent %s requests", n)
		}
	}
	if gi := c.GroupInfo(group); !equalCommits(gi.Commits, commits) {
		t.Fatalf("group offsets changed: %v, were %v", gi.Commits, commits)
	}
	if c.TopicInfo("nope") != nil {
		t.Fatal("the backtest created a topic")
	}
	lg, err := (&kafka.Client{Addr: kafka.TCP(c.Addrs()...)}).ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil || len(lg.Groups) != 1 || lg.Groups[0].GroupID != group {
		t.Fatalf("groups %+v, %v; want only %s", lg, err, group)
	}
}

func equalCommits(a, b map[string]map[int32]kfake.GroupCommit) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if len(ps) != len(b[t]) {
			return false
		}
		for p, c := range ps {
			if b[t][p].Offset != c.Offset || !b[t][p].At.Equal(c.At) {
				return false
			}
		}
	}
	return true
}
