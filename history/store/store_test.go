package store

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
)

func TestDecodeRunRejects(t *testing.T) {
	good := `{"run_id":"r-1","workspace":"acme","automation_id":"a","event_id":"e","object":"lead","record_id":"L-1","ran_at":"2026-11-24T10:00:00Z","outcome":"completed","reason":"","action_ids":[]}`
	if _, err := DecodeRun([]byte(good)); err != nil {
		t.Fatalf("a good run: %v", err)
	}
	for _, tc := range []struct {
		name, in, reason string
	}{
		{"empty", ``, ReasonInvalidJSON},
		{"not an object", `[1,2]`, ReasonInvalidJSON},
		{"truncated", good[:40], ReasonInvalidJSON},
		{"tombstone", `null`, ReasonInvalidJSON},
		{"no run id", strings.Replace(good, `"run_id":"r-1"`, `"run_id":""`, 1), ReasonMissingField},
		{"no automation", strings.Replace(good, `"automation_id":"a",`, ``, 1), ReasonMissingField},
		{"no event", strings.Replace(good, `"event_id":"e"`, `"event_id":""`, 1), ReasonMissingField},
		{"no outcome", strings.Replace(good, `"outcome":"completed"`, `"outcome":""`, 1), ReasonMissingField},
		{"no time", strings.Replace(good, `"ran_at":"2026-11-24T10:00:00Z",`, ``, 1), ReasonMissingField},
		{"bad time", strings.Replace(good, `2026-11-24T10:00:00Z`, `yesterday`, 1), ReasonInvalidField},
		{"time before 1970", strings.Replace(good, `2026-11-24`, `1969-01-01`, 1), ReasonInvalidField},
		{"wrong type", strings.Replace(good, `"action_ids":[]`, `"action_ids":7`, 1), ReasonInvalidField},
		{"NUL in an id", strings.Replace(good, `"L-1"`, `"L\u00001"`, 1), ReasonInvalidField},
		{"long id", strings.Replace(good, `"L-1"`, `"`+strings.Repeat("x", MaxIDBytes+1)+`"`, 1), ReasonInvalidField},
		{"empty action id", strings.Replace(good, `"action_ids":[]`, `"action_ids":[""]`, 1), ReasonInvalidField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRun([]byte(tc.in))
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != tc.reason {
				t.Fatalf("got %v, want a DecodeError %s", err, tc.reason)
			}
			if strings.Contains(de.Detail, "L-1") || strings.Contains(de.Detail, "acme") {
				t.Fatalf("the detail quotes the record: %s", de.Detail)
			}
		})
	}
}

func TestDecodeCleansNUL(t *testing.T) {
	in := `{"run_id":"r-1","workspace":"acme","automation_id":"a","event_id":"e","ran_at":"2026-11-24T10:00:00.123456789Z","outcome":"error","reason":"eval_error","error":"bad\u0000value \\u0000 kept","action_ids":[],
	"why":{"clauses":[],"values":[{"field":"record.x","value":"a\u0000b"}]}}`
	row, err := DecodeRun([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(row.Doc), `\u0000`) && !strings.Contains(string(row.Doc), `\\u0000`) {
		t.Fatalf("doc holds a NUL escape: %s", row.Doc)
	}
	var r actions.Run
	if err := json.Unmarshal(row.Doc, &r); err != nil {
		t.Fatal(err)
	}
	if r.Error != "bad\uFFFDvalue \\u0000 kept" || string(r.Why.Values[0].Value) != `"a\ufffdb"` {
		t.Fatalf("cleaned error %q, value %s", r.Error, r.Why.Values[0].Value)
	}
	if !row.RanAt.Equal(time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)) {
		t.Fatalf("ran_at %v: want it cut to the microsecond", row.RanAt)
	}
}

func TestDecodeOutcomeFinal(t *testing.T) {
	for status, final := range map[string]bool{"delivered": true, "failed": true, "skipped": true, "dry_run": true, "retrying": false} {
		row, err := DecodeOutcome([]byte(`{"action_id":"a-1","run_id":"r-1","workspace":"acme","destination":"hook","status":"` + status + `","attempts":1,"at":"2026-11-24T10:00:00Z"}`))
		if err != nil || row.Final != final {
			t.Errorf("%s: final %v, %v; want %v", status, row.Final, err, final)
		}
	}
	if _, err := DecodeOutcome([]byte(`{"action_id":"a-1","status":"delivered","at":"2026-11-24T10:00:00Z"}`)); err == nil {
		t.Error("an outcome without destination decoded")
	}
	if _, err := DecodeAction([]byte(`{"action_id":"a-1","automation_id":"x","type":"brief"}`)); err == nil {
		t.Error("an action without fired_at decoded")
	}
}

func TestStatus(t *testing.T) {
	out := func(status, reason string) actions.Outcome { return actions.Outcome{Status: status, Reason: reason} }
	for _, tc := range []struct {
		name    string
		outcome string
		acts    [][]actions.Outcome
		want    string
	}{
		{"skipped run", "skipped", nil, StatusSkipped},
		{"error run", "error", nil, StatusError},
		{"no actions", "completed", nil, StatusCompleted},
		{"no outcome", "completed", [][]actions.Outcome{nil}, StatusDeliveryPending},
		{"delivered", "completed", [][]actions.Outcome{{out("delivered", "")}, {out("dry_run", "")}}, StatusDelivered},
		{"already delivered", "completed", [][]actions.Outcome{{out("skipped", "already_delivered")}}, StatusDelivered},
		{"one failed", "completed", [][]actions.Outcome{{out("delivered", "")}, {out("delivered", ""), out("failed", "")}}, StatusDeliveryFailed},
		{"failed beats pending", "completed", [][]actions.Outcome{nil, {out("failed", "")}}, StatusDeliveryFailed},
		{"one pending", "completed", [][]actions.Outcome{{out("delivered", "")}, nil}, StatusDeliveryPending},
		{"not final", "completed", [][]actions.Outcome{{out("retrying", "")}}, StatusDeliveryPending},
		{"skipped", "completed", [][]actions.Outcome{{out("skipped", "no_destination")}, {out("delivered", "")}}, StatusDeliverySkipped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Run{Outcome: tc.outcome}
			var acts []Action
			for _, outs := range tc.acts {
				acts = append(acts, Action{Delivery: actionDelivery(outs)})
			}
			if got, _ := status(r, acts); got != tc.want {
				t.Fatalf("status %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{RanAt: time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC), RunID: "r-a:b"}
	got, err := ParseCursor(c.String())
	if err != nil || *got != c {
		t.Fatalf("cursor %+v, %v; want %+v", got, err, c)
	}
	for _, bad := range []string{"", "!!", "MTIz", "eDpy"} {
		var pe *ParamError
		if _, err := ParseCursor(bad); !errors.As(err, &pe) || pe.Param != "cursor" {
			t.Errorf("cursor %q: %v", bad, err)
		}
	}
}
