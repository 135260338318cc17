package writer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/actions/writer"
	"github.com/whenthen/whenthen/internal/testenv"
)

const partitions = 3

// newCluster starts an in-process Kafka-protocol broker with the four
// default output topics, each of three partitions.
func newCluster(t testing.TB, opts ...kfake.Opt) *testenv.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.SeedTopics(partitions, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic, actions.DefaultOutcomesTopic),
	}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &testenv.Cluster{Cluster: c}
}

// newWriter returns a writer on c with its own transport, whose
// metadata refreshes every 50ms so that topics created by a test are seen
// quickly, and its own metrics registry. edit, if not nil, changes the
// options first.
func newWriter(t testing.TB, c *testenv.Cluster, edit func(*writer.Options)) (*writer.Writer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	transport := &kafka.Transport{MetadataTTL: 50 * time.Millisecond}
	opts := writer.Options{
		Brokers:    c.ListenAddrs(),
		Transport:  transport,
		Registerer: reg,
		Logger:     slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&opts)
	}
	p, err := writer.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		transport.CloseIdleConnections()
	})
	return p, reg
}

func headerMap(m kafka.Message) map[string]string {
	out := make(map[string]string, len(m.Headers))
	for _, h := range m.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

// testActions returns n actions of workspace ws: briefs on 7 records and
// flows for 5 people, with strings that need escaping.
func testActions(ws string, n int) []actions.Action {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	out := make([]actions.Action, n)
	for i := range out {
		ev := fmt.Sprintf("evt-%d", i)
		a := actions.Action{
			Workspace: ws, EventID: ev, Object: "opportunity", RecordID: fmt.Sprintf("006A%d", i%7),
			EventTime: t0.Add(time.Duration(i) * time.Second),
			FiredAt:   t0.Add(time.Duration(i)*time.Second + 12*time.Millisecond).In(time.FixedZone("X", 3600)),
		}
		if i%2 == 0 {
			a.AutomationID, a.Type = "closed-won-brief", actions.TypeBrief
			a.Brief = &actions.Brief{Kind: "opportunity", Recipients: []string{"user:u-7", "email:\"rev\\ops\"\u2028<x>@example.com\n", "bad\xffutf8"}}
			a.ActionID = actions.ActionID(ws, a.AutomationID, ev, actions.TypeBrief)
		} else {
			person := fmt.Sprintf("003X%d", i%5)
			a.AutomationID, a.Type = "upsell-flow", actions.TypeFlow
			a.Flow = &actions.Flow{ID: "expansion-outreach", PersonID: person}
			a.ActionID = actions.ActionID(ws, a.AutomationID, ev, person)
		}
		out[i] = a
	}
	return out
}

// decodedAction is what json.Unmarshal gives back for a, as actions'
// JSON tests state it: times in UTC, invalid UTF-8 replaced by U+FFFD,
// recipients never nil.
func decodedAction(a actions.Action) actions.Action {
	valid := func(s string) string { return string([]rune(s)) }
	a.EventTime, a.FiredAt = a.EventTime.UTC(), a.FiredAt.UTC()
	for _, p := range []*string{&a.ActionID, &a.Workspace, &a.AutomationID, &a.Type, &a.Object, &a.RecordID, &a.EventID} {
		*p = valid(*p)
	}
	if b := a.Brief; b != nil {
		rs := make([]string, len(b.Recipients))
		for i, r := range b.Recipients {
			rs[i] = valid(r)
		}
		a.Brief = &actions.Brief{Kind: valid(b.Kind), Recipients: rs}
	}
	if f := a.Flow; f != nil {
		a.Flow = &actions.Flow{ID: valid(f.ID), PersonID: valid(f.PersonID)}
	}
	return a
}

func testRuns(ws string, n int) []actions.Run {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	out := make([]actions.Run, n)
	for i := range out {
		ev := fmt.Sprintf("evt-%d", i)
		r := actions.Run{
			RunID: actions.RunID(ws, "closed-won-brief", ev), Workspace: ws, AutomationID: "closed-won-brief",
			Trigger: "record", EventID: ev, RanAt: t0.Add(time.Duration(i) * time.Millisecond), Outcome: actions.OutcomeCompleted,
		}
		switch i % 3 {
		case 0:
			r.Object, r.RecordID = "opportunity", fmt.Sprintf("006A%d", i%7)
			r.ActionIDs = []string{actions.ActionID(ws, "closed-won-brief", ev, actions.TypeBrief)}
		case 1:
			r.Trigger = "schedule"
			r.Outcome, r.Reason = actions.OutcomeSkipped, actions.ReasonNoPerson
		case 2:
			r.Object, r.RecordID = "account", fmt.Sprintf("001B%d", i%4)
			r.Outcome, r.Reason, r.Error = actions.OutcomeError, actions.ReasonEvalError, "no such key: \"tier\"\x00"
		}
		out[i] = r
	}
	return out
}

func TestPublish(t *testing.T) {
	for _, tc := range []struct {
		name        string
		compression kafka.Compression
	}{
		{"uncompressed", 0},
		{"zstd", kafka.Zstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			p, reg := newWriter(t, c, func(o *writer.Options) { o.Compression = tc.compression })
			as, rs := testActions("acme", 40), testRuns("acme", 25)
			if err := p.Publish(t.Context(), as, rs); err != nil {
				t.Fatalf("Publish: %v", err)
			}

			got := c.ReadTopic(t, actions.DefaultActionsTopic)
			if len(got) != len(as) {
				t.Fatalf("read %d actions, want %d", len(got), len(as))
			}
			byID := map[string]kafka.Message{}
			for _, m := range got {
				byID[testenv.Header(m, actions.HeaderActionID)] = m
			}
			for _, a := range as {
				m, ok := byID[a.ActionID]
				if !ok {
					t.Fatalf("action %s not in Kafka", a.ActionID)
				}
				if want := a.AppendJSON(nil); !bytes.Equal(m.Value, want) {
					t.Errorf("action %s value\n got %s\nwant %s", a.ActionID, m.Value, want)
				}
				if string(m.Key) != a.Key() {
					t.Errorf("action %s key %q, want %q", a.ActionID, m.Key, a.Key())
				}
				wantHeaders := map[string]string{actions.HeaderActionID: a.ActionID, actions.HeaderWorkspace: "acme"}
				if h := headerMap(m); !reflect.DeepEqual(h, wantHeaders) || len(m.Headers) != 2 {
					t.Errorf("action %s headers %v, want %v", a.ActionID, m.Headers, wantHeaders)
				}
				var back actions.Action
				if err := json.Unmarshal(m.Value, &back); err != nil {
					t.Fatalf("action %s: %v", a.ActionID, err)
				}
				if want := decodedAction(a); !reflect.DeepEqual(back, want) {
					t.Errorf("action %s decodes to\n %#v\nwant %#v", a.ActionID, back, want)
				}
			}

			gotRuns := c.ReadTopic(t, actions.DefaultRunsTopic)
			if len(gotRuns) != len(rs) {
				t.Fatalf("read %d runs, want %d", len(gotRuns), len(rs))
			}
			runByID := map[string]kafka.Message{}
			for _, m := range gotRuns {
				runByID[testenv.Header(m, actions.HeaderRunID)] = m
			}
			for _, r := range rs {
				m, ok := runByID[r.RunID]
				if !ok {
					t.Fatalf("run %s not in Kafka", r.RunID)
				}
				if want := r.AppendJSON(nil); !bytes.Equal(m.Value, want) {
					t.Errorf("run %s value\n got %s\nwant %s", r.RunID, m.Value, want)
				}
				if string(m.Key) != r.Key() {
					t.Errorf("run %s key %q, want %q", r.RunID, m.Key, r.Key())
				}
				wantHeaders := map[string]string{actions.HeaderRunID: r.RunID, actions.HeaderWorkspace: "acme"}
				if h := headerMap(m); !reflect.DeepEqual(h, wantHeaders) || len(m.Headers) != 2 {
					t.Errorf("run %s headers %v, want %v", r.RunID, m.Headers, wantHeaders)
				}
			}
			if n := c.Count(actions.DefaultDLQTopic); n != 0 {
				t.Errorf("%d dead letters, want 0", n)
			}

			const want = `
# HELP whenthen_produce_errors_total Writes to Kafka that failed, in whole or in part (each is retried).
# TYPE whenthen_produce_errors_total counter
whenthen_produce_errors_total{topic="automations.actions"} 0
whenthen_produce_errors_total{topic="automations.dlq"} 0
whenthen_produce_errors_total{topic="automations.runs"} 0
# HELP whenthen_produce_retries_total Writes to Kafka repeated after a failed one, with the messages not acknowledged.
# TYPE whenthen_produce_retries_total counter
whenthen_produce_retries_total{topic="automations.actions"} 0
whenthen_produce_retries_total{topic="automations.dlq"} 0
whenthen_produce_retries_total{topic="automations.runs"} 0
# HELP whenthen_produced_messages_total Messages written to Kafka and acknowledged by all in-sync replicas.
# TYPE whenthen_produced_messages_total counter
whenthen_produced_messages_total{topic="automations.actions"} 40
whenthen_produced_messages_total{topic="automations.dlq"} 0
whenthen_produced_messages_total{topic="automations.runs"} 25
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
				"whenthen_produced_messages_total", "whenthen_produce_errors_total", "whenthen_produce_retries_total"); err != nil {
				t.Error(err)
			}
			for topic, n := range map[string]float64{actions.DefaultActionsTopic: 1, actions.DefaultRunsTopic: 1, actions.DefaultDLQTopic: 0} {
				if got := testenv.Metric(t, reg, "whenthen_produce_duration_seconds", "topic", topic); got != n {
					t.Errorf("produce duration samples for %s = %v, want %v", topic, got, n)
				}
			}
			problems, err := testutil.GatherAndLint(reg)
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range problems {
				t.Errorf("metric lint: %s: %s", pr.Metric, pr.Text)
			}
		})
	}
}

func TestPublishEmpty(t *testing.T) {
	c := newCluster(t)
	p, reg := newWriter(t, c, nil)
	// Look at the produce requests on the wire: kafka-go's reader returns an
	// empty header value as nil, so it cannot tell "" from null.
	var emptyWorkspace, nullWorkspace atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, pp := range tp.Partitions {
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom(pp.Records); err != nil {
					continue
				}
				recs, err := kfake.BatchRecords(batch)
				if err != nil {
					continue
				}
				for _, r := range recs {
					for _, h := range r.Headers {
						switch {
						case h.Key != actions.HeaderWorkspace:
						case h.Value == nil:
							nullWorkspace.Add(1)
						case len(h.Value) == 0:
							emptyWorkspace.Add(1)
						}
					}
				}
			}
		}
		return nil, nil, false
	})
	if err := p.Publish(t.Context(), nil, nil); err != nil {
		t.Fatalf("Publish(nil, nil): %v", err)
	}
	if err := p.Publish(t.Context(), nil, testRuns("", 3)); err != nil {
		t.Fatalf("Publish(nil, runs): %v", err)
	}
	msgs := c.ReadTopic(t, actions.DefaultRunsTopic)
	if len(msgs) != 3 {
		t.Fatalf("%d runs in Kafka, want 3", len(msgs))
	}
	for _, m := range msgs {
		if len(m.Headers) != 2 || m.Headers[1].Key != actions.HeaderWorkspace || len(m.Headers[1].Value) != 0 {
			t.Errorf("headers %#v, want an empty %s", m.Headers, actions.HeaderWorkspace)
		}
	}
	// No workspace: the header is there, empty, not null.
	if e, n := emptyWorkspace.Load(), nullWorkspace.Load(); e != 3 || n != 0 {
		t.Errorf("%d empty and %d null %s headers produced, want 3 and 0", e, n, actions.HeaderWorkspace)
	}
	if got := testenv.Metric(t, reg, "whenthen_produce_duration_seconds", "topic", actions.DefaultActionsTopic); got != 0 {
		t.Errorf("an empty write was timed (%v samples)", got)
	}
}

func TestPublishKeepsKeyOnOnePartition(t *testing.T) {
	c := newCluster(t)
	p, _ := newWriter(t, c, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var as []actions.Action
	for i := range 300 {
		person := fmt.Sprintf("person-%d", i%12)
		ev := fmt.Sprintf("evt-%d", i)
		as = append(as, actions.Action{
			ActionID: actions.ActionID("acme", "f", ev, person), Workspace: "acme", AutomationID: "f",
			Type: actions.TypeFlow, Flow: &actions.Flow{ID: "flow", PersonID: person}, EventID: ev,
			EventTime: t0, FiredAt: t0.Add(time.Duration(i) * time.Millisecond),
		})
	}
	// Two calls, so that order across writes is checked too.
	if err := p.Publish(t.Context(), as[:150], nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), as[150:], nil); err != nil {
		t.Fatal(err)
	}

	msgs := c.ReadTopic(t, actions.DefaultActionsTopic)
	if len(msgs) != len(as) {
		t.Fatalf("read %d, want %d", len(msgs), len(as))
	}
	partitionOf := map[string]int{}
	lastFired := map[string]time.Time{}
	used := map[int]bool{}
	hash := &kafka.Hash{}
	for _, m := range msgs { // in offset order within each partition
		key := string(m.Key)
		if p, ok := partitionOf[key]; ok && p != m.Partition {
			t.Errorf("key %s on partitions %d and %d", key, p, m.Partition)
		}
		partitionOf[key] = m.Partition
		used[m.Partition] = true
		if want := hash.Balance(kafka.Message{Key: m.Key}, 0, 1, 2); m.Partition != want {
			t.Errorf("key %s on partition %d, kafka.Hash says %d", key, m.Partition, want)
		}
		var a actions.Action
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatal(err)
		}
		if a.FiredAt.Before(lastFired[key]) {
			t.Errorf("key %s: action fired at %v after one fired at %v", key, a.FiredAt, lastFired[key])
		}
		lastFired[key] = a.FiredAt
	}
	if len(partitionOf) != 12 || len(used) < 2 {
		t.Errorf("%d keys over %d partitions: the test proves nothing", len(partitionOf), len(used))
	}
}

func TestDeadLetter(t *testing.T) {
	c := newCluster(t)
	p, reg := newWriter(t, c, nil)
	srcTime := time.Date(2020, 2, 3, 4, 5, 6, 7, time.FixedZone("Z", -3600))
	long := strings.Repeat("é", 1000) // 2000 bytes, cut inside no rune
	dls := []actions.DeadLetter{
		{
			Key: []byte("006A1"), Value: []byte("{\"id\": \"evt-1\", \xff\x00 truncated"),
			Reason: "decode", Detail: "unexpected end of JSON input",
			Topic: "crm.events", Partition: 2, Offset: 12345, Time: srcTime,
		},
		{Key: nil, Value: nil, Detail: long, Topic: "crm.events", Partition: 0, Offset: 7},
		{
			Key: []byte("k"), Value: []byte(`{"secret":"s3cr3t-payload"}`),
			Reason: "missing_id", Detail: `bad event {"secret":"s3cr3t-payload"} here`,
			Topic: "crm.events", Partition: 1, Offset: 99,
		},
	}
	if err := p.DeadLetter(t.Context(), dls); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	msgs := c.ReadTopic(t, actions.DefaultDLQTopic)
	if len(msgs) != len(dls) {
		t.Fatalf("read %d dead letters, want %d", len(msgs), len(dls))
	}
	byOffset := map[string]kafka.Message{}
	for _, m := range msgs {
		byOffset[testenv.Header(m, actions.HeaderSourceOffset)] = m
	}
	cut := strings.Repeat("é", 512) // 1024 bytes
	for i, want := range []map[string]string{
		{
			actions.HeaderDLQReason: "decode", actions.HeaderDLQDetail: "unexpected end of JSON input",
			actions.HeaderSourceTopic: "crm.events", actions.HeaderSourcePartition: "2", actions.HeaderSourceOffset: "12345",
			actions.HeaderSourceTime: "2020-02-03T05:05:06.000000007Z",
		},
		{
			actions.HeaderDLQReason: "unknown", actions.HeaderDLQDetail: cut,
			actions.HeaderSourceTopic: "crm.events", actions.HeaderSourcePartition: "0", actions.HeaderSourceOffset: "7",
		},
		{
			actions.HeaderDLQReason: "missing_id", actions.HeaderDLQDetail: "bad event <payload> here",
			actions.HeaderSourceTopic: "crm.events", actions.HeaderSourcePartition: "1", actions.HeaderSourceOffset: "99",
		},
	} {
		dl := dls[i]
		m, ok := byOffset[strconv.FormatInt(dl.Offset, 10)]
		if !ok {
			t.Fatalf("dead letter of offset %d missing", dl.Offset)
		}
		if !bytes.Equal(m.Key, dl.Key) || !bytes.Equal(m.Value, dl.Value) {
			t.Errorf("dead letter %d: key %q value %q, want the original %q %q", i, m.Key, m.Value, dl.Key, dl.Value)
		}
		if got := headerMap(m); !reflect.DeepEqual(got, want) || len(m.Headers) != len(want) {
			t.Errorf("dead letter %d: headers\n got %v\nwant %v", i, got, want)
		}
		if !m.Time.After(srcTime) {
			t.Errorf("dead letter %d: record time %v is not the time of writing", i, m.Time)
		}
	}
	if got := testenv.Metric(t, reg, "whenthen_produced_messages_total", "topic", actions.DefaultDLQTopic); got != 3 {
		t.Errorf("produced dead letters = %v, want 3", got)
	}
}

func TestPublishContextDone(t *testing.T) {
	t.Run("cancelled before", func(t *testing.T) {
		c := newCluster(t)
		p, reg := newWriter(t, c, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := p.Publish(ctx, testActions("acme", 5), testRuns("acme", 5)); !errors.Is(err, context.Canceled) {
			t.Errorf("Publish = %v, want context.Canceled", err)
		}
		if err := p.DeadLetter(ctx, []actions.DeadLetter{{Value: []byte("x")}}); !errors.Is(err, context.Canceled) {
			t.Errorf("DeadLetter = %v, want context.Canceled", err)
		}
		for _, topic := range []string{actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic} {
			if n := c.Count(topic); n != 0 {
				t.Errorf("%d messages in %s", n, topic)
			}
			if got := testenv.Metric(t, reg, "whenthen_produced_messages_total", "topic", topic); got != 0 {
				t.Errorf("produced %v to %s", got, topic)
			}
		}
	})

	t.Run("deadline while retrying", func(t *testing.T) {
		c := newCluster(t)
		p, reg := newWriter(t, c, func(o *writer.Options) { o.ActionsTopic = "missing.actions" })
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := p.Publish(ctx, testActions("acme", 5), nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Publish returned %v after its deadline", d)
		}
		if got := testenv.Metric(t, reg, "whenthen_produce_errors_total", "topic", "missing.actions"); got < 1 {
			t.Errorf("produce errors = %v, want some", got)
		}
	})
}

func TestPublishRetriesUntilTopicExists(t *testing.T) {
	c := newCluster(t)
	const actionsTopic, runsTopic = "late.actions", "late.runs"
	p, reg := newWriter(t, c, func(o *writer.Options) {
		o.ActionsTopic, o.RunsTopic = actionsTopic, runsTopic
	})
	as, rs := testActions("acme", 20), testRuns("acme", 10)

	done := make(chan error, 1)
	go func() { done <- p.Publish(t.Context(), as, rs) }()

	// Both writes have failed and are being retried; now create the topics.
	testenv.WaitFor(t, 10*time.Second, "retries", func() bool {
		return testenv.Metric(t, reg, "whenthen_produce_retries_total", "topic", actionsTopic) >= 1 &&
			testenv.Metric(t, reg, "whenthen_produce_retries_total", "topic", runsTopic) >= 1
	})
	specs := []writer.TopicSpec{{Name: actionsTopic, Partitions: 3}, {Name: runsTopic, Partitions: 2}}
	if err := writer.EnsureTopics(t.Context(), c.ListenAddrs(), nil, specs); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Publish: %v", err)
	}

	// At least once: every id arrived.
	for _, tc := range []struct {
		topic, header string
		ids           []string
	}{
		{actionsTopic, actions.HeaderActionID, idsOf(as, func(a actions.Action) string { return a.ActionID })},
		{runsTopic, actions.HeaderRunID, idsOf(rs, func(r actions.Run) string { return r.RunID })},
	} {
		seen := map[string]int{}
		for _, m := range c.ReadTopic(t, tc.topic) {
			seen[testenv.Header(m, tc.header)]++
		}
		for _, id := range tc.ids {
			if seen[id] < 1 {
				t.Errorf("%s: %s never arrived", tc.topic, id)
			}
		}
		if got := testenv.Metric(t, reg, "whenthen_produced_messages_total", "topic", tc.topic); got != float64(len(tc.ids)) {
			t.Errorf("%s: produced = %v, want %d", tc.topic, got, len(tc.ids))
		}
		if got := testenv.Metric(t, reg, "whenthen_produce_errors_total", "topic", tc.topic); got < 1 {
			t.Errorf("%s: produce errors = %v, want some", tc.topic, got)
		}
	}
}

func idsOf[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func TestPublishRetriesOnlyFailedMessages(t *testing.T) {
	c := newCluster(t)
	// One attempt per kafka-go write, so that every failure reaches our loop.
	p, reg := newWriter(t, c, func(o *writer.Options) { o.MaxAttempts = 1 })

	// Partition 1 of the actions topic answers twice "appended, but to too
	// few replicas": the records are written, the write reports failure.
	// Partition 0 of the runs topic refuses once.
	hAct := c.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Topic: actions.DefaultActionsTopic, Partitions: []int32{1},
		Err: kerr.NotEnoughReplicasAfterAppend, Count: 2,
	})
	hRun := c.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Topic: actions.DefaultRunsTopic, Partitions: []int32{0},
		Err: kerr.NotEnoughReplicas, Count: 1,
	})

	as, rs := testActions("acme", 30), testRuns("acme", 30)
	if err := p.Publish(t.Context(), as, rs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if hAct.Hits() != 2 || hRun.Hits() != 1 {
		t.Fatalf("faults hit %d and %d times, want 2 and 1", hAct.Hits(), hRun.Hits())
	}

	for _, tc := range []struct {
		topic, header   string
		n               int
		faulted, copies int // messages of partition faulted arrive copies times
	}{
		{actions.DefaultActionsTopic, actions.HeaderActionID, len(as), 1, 3},
		{actions.DefaultRunsTopic, actions.HeaderRunID, len(rs), 0, 1},
	} {
		count := map[string]int{}
		partition := map[string]int{}
		for _, m := range c.ReadTopic(t, tc.topic) {
			id := testenv.Header(m, tc.header)
			count[id]++
			partition[id] = m.Partition
		}
		if len(count) != tc.n {
			t.Errorf("%s: %d distinct ids, want %d", tc.topic, len(count), tc.n)
		}
		onFaulted := 0
		for id, n := range count {
			want := 1
			if partition[id] == tc.faulted {
				want = tc.copies
				onFaulted++
			}
			if n != want {
				t.Errorf("%s: %s (partition %d) arrived %d times, want %d", tc.topic, id, partition[id], n, want)
			}
		}
		if onFaulted == 0 || onFaulted == tc.n {
			t.Errorf("%s: %d of %d ids on the faulted partition: the test proves nothing", tc.topic, onFaulted, tc.n)
		}
	}

	for _, tc := range []struct {
		topic                     string
		produced, errors, retries float64
	}{
		{actions.DefaultActionsTopic, float64(len(as)), 2, 2},
		{actions.DefaultRunsTopic, float64(len(rs)), 1, 1},
	} {
		for name, want := range map[string]float64{
			"whenthen_produced_messages_total": tc.produced,
			"whenthen_produce_errors_total":    tc.errors,
			"whenthen_produce_retries_total":   tc.retries,
		} {
			if got := testenv.Metric(t, reg, name, "topic", tc.topic); got != want {
				t.Errorf("%s{topic=%q} = %v, want %v", name, tc.topic, got, want)
			}
		}
	}
}

func TestPublishDoesNotRetryTooLarge(t *testing.T) {
	c := newCluster(t)
	p, reg := newWriter(t, c, nil)
	rs := testRuns("acme", 2)
	rs[1].Error = strings.Repeat("x", 2<<20) // over kafka-go's 1 MiB batch limit
	err := p.Publish(t.Context(), nil, rs)
	var tooLarge kafka.MessageTooLargeError
	if !errors.As(err, &tooLarge) {
		t.Fatalf("Publish = %v, want a kafka.MessageTooLargeError", err)
	}
	if !writer.TooLarge(err) {
		t.Errorf("TooLarge(%v) = false", err)
	}
	if got := testenv.Metric(t, reg, "whenthen_produce_retries_total", "topic", actions.DefaultRunsTopic); got != 0 {
		t.Errorf("retried %v times", got)
	}
	for _, e := range []error{kafka.MessageSizeTooLarge, fmt.Errorf("write: %w", kafka.RecordListTooLarge)} {
		if !writer.TooLarge(e) {
			t.Errorf("TooLarge(%v) = false", e)
		}
	}
	for _, e := range []error{nil, kafka.InvalidTopic, context.DeadlineExceeded, writer.ErrClosed} {
		if writer.TooLarge(e) {
			t.Errorf("TooLarge(%v) = true", e)
		}
	}
}

func TestClose(t *testing.T) {
	t.Run("idempotent", func(t *testing.T) {
		c := newCluster(t)
		p, _ := newWriter(t, c, nil)
		if err := p.Publish(t.Context(), testActions("", 3), nil); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := p.Close(t.Context()); err != nil {
				t.Fatalf("Close #%d: %v", i+1, err)
			}
		}
		if err := p.Publish(t.Context(), testActions("", 1), nil); !errors.Is(err, writer.ErrClosed) {
			t.Errorf("Publish after Close = %v, want ErrClosed", err)
		}
		if err := p.DeadLetter(t.Context(), []actions.DeadLetter{{Value: []byte("x")}}); !errors.Is(err, writer.ErrClosed) {
			t.Errorf("DeadLetter after Close = %v, want ErrClosed", err)
		}
	})

	t.Run("stops retries", func(t *testing.T) {
		c := newCluster(t)
		p, reg := newWriter(t, c, func(o *writer.Options) { o.ActionsTopic = "missing.actions" })
		done := make(chan error, 1)
		go func() { done <- p.Publish(t.Context(), testActions("", 1), nil) }()
		testenv.WaitFor(t, 10*time.Second, "a retry", func() bool {
			return testenv.Metric(t, reg, "whenthen_produce_retries_total", "topic", "missing.actions") >= 1
		})
		if err := p.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-done; !errors.Is(err, writer.ErrClosed) {
			t.Errorf("Publish during Close = %v, want ErrClosed", err)
		}
	})

	t.Run("bounded when the writer hangs", func(t *testing.T) {
		c := newCluster(t)
		p, _ := newWriter(t, c, func(o *writer.Options) {
			o.MaxAttempts = 1
			o.WriteTimeout = 3 * time.Second
		})
		// The broker swallows one produce request and never answers it, so
		// the kafka-go writer holds an unfinished batch until WriteTimeout.
		inflight := make(chan struct{}, 1)
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			select {
			case inflight <- struct{}{}:
			default:
			}
			return nil, nil, true
		})
		pubCtx, cancelPub := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Publish(pubCtx, testActions("", 1), nil) }()
		<-inflight
		cancelPub()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish = %v, want context.Canceled", err)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := p.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond { // far below WriteTimeout
			t.Errorf("Close took %v with a 100ms deadline", d)
		}
		// Once the request times out the writer closes, and a later Close
		// reports that.
		if err := p.Close(t.Context()); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
}

func TestNewErrors(t *testing.T) {
	ok := writer.Options{Brokers: []string{"127.0.0.1:1"}}
	for _, tc := range []struct {
		name string
		edit func(*writer.Options)
		want string
	}{
		{"no brokers", func(o *writer.Options) { o.Brokers = nil }, "no brokers"},
		{"empty broker", func(o *writer.Options) { o.Brokers = []string{""} }, "empty broker"},
		{"same topics", func(o *writer.Options) { o.RunsTopic = actions.DefaultActionsTopic }, "topics must differ"},
		{"dlq like runs", func(o *writer.Options) { o.DLQTopic = "x"; o.RunsTopic = "x" }, "topics must differ"},
		{"negative batch timeout", func(o *writer.Options) { o.BatchTimeout = -1 }, "BatchTimeout"},
		{"negative batch size", func(o *writer.Options) { o.BatchSize = -1 }, "BatchSize"},
		{"negative write timeout", func(o *writer.Options) { o.WriteTimeout = -1 }, "WriteTimeout"},
		{"negative max attempts", func(o *writer.Options) { o.MaxAttempts = -1 }, "MaxAttempts"},
		{"unknown compression", func(o *writer.Options) { o.Compression = 9 }, "Compression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			p, err := writer.New(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, %v; want an error about %s", p, err, tc.want)
			}
		})
	}

	t.Run("registered twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		o := ok
		o.Registerer = reg
		p, err := writer.New(o)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(t.Context())
		if _, err := writer.New(o); err == nil || !strings.Contains(err.Error(), "already registered") {
			t.Errorf("second New on one registry = %v, want an error", err)
		}
		// The failed writer registered nothing; the first is intact.
		if n, err := testutil.GatherAndCount(reg); err != nil || n != 12 {
			t.Errorf("%d series (%v), want 12", n, err)
		}
	})

	t.Run("defaults", func(t *testing.T) {
		p, err := writer.New(ok) // nil Registerer, Logger, Transport
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Close(t.Context()); err != nil {
			t.Error(err)
		}
	})
}

func TestEnsureTopics(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	specs := []writer.TopicSpec{
		{Name: "new.a", Partitions: 4, Configs: map[string]string{"retention.ms": "3600000"}},
		{Name: "new.b"},
		{Name: actions.DefaultActionsTopic, Partitions: 9}, // exists: left alone
	}
	if err := writer.EnsureTopics(t.Context(), brokers, nil, specs); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	if err := writer.EnsureTopics(t.Context(), brokers, &kafka.Dialer{Timeout: 5 * time.Second}, specs); err != nil {
		t.Fatalf("EnsureTopics again: %v", err)
	}
	for topic, want := range map[string]int{"new.a": 4, "new.b": 1, actions.DefaultActionsTopic: partitions} {
		if got := len(c.PartitionInfos(topic)); got != want {
			t.Errorf("%s has %d partitions, want %d", topic, got, want)
		}
	}
	if ti := c.TopicInfo("new.a"); ti == nil || ti.Configs["retention.ms"] == nil || *ti.Configs["retention.ms"] != "3600000" {
		t.Errorf("new.a configs = %+v, want retention.ms=3600000", ti)
	}

	for _, tc := range []struct {
		name    string
		brokers []string
		specs   []writer.TopicSpec
	}{
		{"no brokers", nil, specs},
		{"no name", brokers, []writer.TopicSpec{{Partitions: 1}}},
		{"negative partitions", brokers, []writer.TopicSpec{{Name: "x", Partitions: -1}}},
		{"unreachable", []string{"127.0.0.1:1"}, specs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if err := writer.EnsureTopics(ctx, tc.brokers, nil, tc.specs); err == nil {
				t.Error("EnsureTopics succeeded")
			}
		})
	}
}

func TestDefaultTopics(t *testing.T) {
	got := writer.DefaultTopics(6, 3)
	names := make([]string, len(got))
	for i, s := range got {
		names[i] = s.Name
		if s.Partitions != 6 || s.ReplicationFactor != 3 {
			t.Errorf("%s: %d partitions, replication %d", s.Name, s.Partitions, s.ReplicationFactor)
		}
	}
	if want := []string{"automations.actions", "automations.runs", "automations.dlq", "automations.outcomes"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
}

// BenchmarkPublish measures synchronous publishing to the in-process broker:
// a Publish with few messages per partition waits for BatchTimeout, so
// throughput comes from records per call and from concurrent callers.
func BenchmarkPublish(b *testing.B) {
	for _, tc := range []struct {
		name     string
		n        int // actions and runs per Publish
		parallel bool
	}{
		{"1+1", 1, false},
		{"100+100", 100, false},
		{"1+1-parallel", 1, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := newCluster(b)
			p, _ := newWriter(b, c, nil)
			as, rs := testActions("acme", tc.n), testRuns("acme", tc.n)
			b.ReportAllocs()
			if tc.parallel {
				b.SetParallelism(64)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := p.Publish(b.Context(), as, rs); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if err := p.Publish(b.Context(), as, rs); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*2*tc.n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
