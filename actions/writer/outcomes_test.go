package writer_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/actions/writer"
	"github.com/whenthen/whenthen/internal/testenv"
)

func TestWriteOutcomes(t *testing.T) {
	c := newCluster(t)
	w, reg := newWriter(t, c, nil)
	at := time.Date(2026, 11, 24, 10, 0, 1, 462_000_000, time.FixedZone("CET", 3600))
	outs := []actions.Outcome{
		{ActionID: "a-1", RunID: "r-1", Workspace: "acme", AutomationID: "closed-won-brief", Type: actions.TypeBrief,
			Destination: "revops-email", Status: actions.StatusDelivered, Attempts: 2, DurationMS: 1450, At: at,
			Detail:     "sent to email:revops@example.com",
			AttemptLog: []actions.Attempt{{At: at.Add(-time.Second), DurationMS: 1000, Error: "dial tcp: i/o timeout"}, {At: at, DurationMS: 362}}},
		{ActionID: "a-2", Workspace: "", AutomationID: "f", Type: actions.TypeFlow, Destination: "none",
			Status: actions.StatusSkipped, Reason: actions.ReasonNoDestination, At: at},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteOutcomes(ctx, outs); err != nil {
		t.Fatal(err)
	}
	msgs := c.ReadTopic(t, actions.DefaultOutcomesTopic)
	if len(msgs) != 2 {
		t.Fatalf("%d outcome records, want 2", len(msgs))
	}
	got := map[string]actions.Outcome{}
	for _, m := range msgs {
		var o actions.Outcome
		if err := json.Unmarshal(m.Value, &o); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != o.ActionID || headerMap(m)[actions.HeaderActionID] != o.ActionID || headerMap(m)[actions.HeaderWorkspace] != o.Workspace {
			t.Errorf("key %q, headers %v for %s", m.Key, headerMap(m), o.ActionID)
		}
		if !strings.Contains(string(m.Value), `"at":"2026-11-24T09:00:01.462Z"`) {
			t.Errorf("time not in UTC: %s", m.Value)
		}
		got[o.ActionID] = o
	}
	want := outs[0]
	want.At = want.At.UTC()
	want.AttemptLog = []actions.Attempt{{At: at.Add(-time.Second).UTC(), DurationMS: 1000, Error: "dial tcp: i/o timeout"}, {At: at.UTC(), DurationMS: 362}}
	if !reflect.DeepEqual(got["a-1"], want) {
		t.Errorf("outcome\n%+v\nwant\n%+v", got["a-1"], want)
	}
	if outs[0].At.Location().String() != "CET" {
		t.Error("WriteOutcomes changed its argument")
	}
	if n := testenv.Metric(t, reg, "whenthen_produced_messages_total", "topic", actions.DefaultOutcomesTopic); n != 2 {
		t.Errorf("produced %v outcomes, want 2", n)
	}
}

func TestOutcomesTopicMustDiffer(t *testing.T) {
	_, err := writer.New(writer.Options{Brokers: []string{"127.0.0.1:1"}, OutcomesTopic: actions.DefaultDLQTopic})
	if err == nil || !strings.Contains(err.Error(), "topics must differ") {
		t.Fatalf("New: %v, want topics must differ", err)
	}
}
