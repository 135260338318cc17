//go:build linux

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// poison is one bad input of RELIABILITY.md's list. reason is the
// dead-letter reason it must get, "" when it is a valid event that must
// be processed (then wantActions is how many copies of its big-deal
// action the topic must hold: 1, or 0 for an event the engine ignores).
type poison struct {
	name        string
	value       []byte
	reason      string
	event       string // its event id, for processed ones
	wantActions int
}

func poisons() []poison {
	env := func(id, typ, tm, rec string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"type":%q,"time":%q,"workspace":"acme","object":"opportunity","record":%s}`, id, typ, tm, rec)
	}
	const now = "2026-11-24T10:00:00Z"
	upd := func(id, rec string) []byte { return env(id, "record.updated", now, rec) }
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	million := "[" + strings.Repeat("0,", 1_000_000-1) + "0]"
	ps := []poison{
		{name: "truncated JSON", value: upd("p-trunc", `{"id":"x","amount":5000}`)[:40], reason: "invalid_json"},
		{name: "invalid UTF-8", value: append(upd("p-utf8", `{"id":"x","name":"`), 0xff, 0xfe, '"', '}', '}'), reason: "invalid_utf8"},
		{name: "lone surrogate", value: upd("p-surrogate", `{"id":"x","name":"\ud800"}`), reason: "invalid_utf8"},
		{name: "1e400", value: upd("p-1e400", `{"id":"x","amount":1e400}`), reason: "invalid_field"},
		{name: "integer over int64", value: []byte(`{"id":"p-int64","type":"record.created","time":"` + now + `","workspace":"acme","object":"lead","record":{"id":"L","score":92233720368547758070}}`), reason: "invalid_field"},
		{name: "duplicate key", value: []byte(`{"id":"p-dup","id":"p-dup2","type":"record.updated","time":"` + now + `","object":"opportunity","record":{"id":"x"}}`), reason: "duplicate_key"},
		{name: "case-variant key", value: []byte(`{"id":"p-case","ID":"p-case2","type":"record.updated","time":"` + now + `","object":"opportunity","record":{"id":"x"}}`), reason: "duplicate_key"},
		{name: "null id", value: []byte(`{"id":null,"type":"record.updated","time":"` + now + `","object":"opportunity","record":{"id":"x"}}`), reason: "missing_field"},
		{name: "missing record id", value: upd("p-norec", `{"amount":5000}`), reason: "missing_field"},
		{name: "wrong-typed id", value: []byte(`{"id":5,"type":"record.updated","time":"` + now + `","object":"opportunity","record":{"id":"x"}}`), reason: "invalid_field"},
		{name: "wrong-typed field", value: upd("p-type", `{"id":"x","amount":"lots"}`), reason: "invalid_field"},
		{name: "empty message", value: []byte{}, reason: "empty"},
		{name: "tombstone", value: nil, reason: "empty"},
		{name: "JSON null", value: []byte("null"), reason: "empty"},
		{name: "not an object", value: []byte(`[1,2,3]`), reason: "invalid_json"},
		{name: "unknown type", value: env("p-utype", "record.exploded", now, `{"id":"x"}`), reason: "unknown_type"},
		{name: "unknown object", value: []byte(`{"id":"p-uobj","type":"record.created","time":"` + now + `","object":"deal","record":{"id":"x"}}`), reason: "unknown_object"},
		{name: "over the size limit", value: upd("p-large", `{"id":"x","name":"`+strings.Repeat("a", 1<<20)+`"}`), reason: "too_large"},
		{name: "string over the limit", value: upd("p-longstr", `{"id":"x","name":"`+strings.Repeat("a", 70_000)+`"}`), reason: "invalid_field"},
		{name: "deep nesting", value: upd("p-deep", `{"id":"x","extra":`+deep+`}`), reason: "too_deep"},
		{name: "10^4-element array", value: upd("p-10k", `{"id":"x","extra":[`+strings.Repeat("0,", 9_999)+`0]}`), reason: "too_large"},
		{name: "10^6-element array", value: upd("p-1m", `{"id":"x","extra":`+million+`}`), reason: "too_large"},
		{name: "raw control character", value: upd("p-ctrl", "{\"id\":\"x\",\"name\":\"a\x01b\"}"), reason: "invalid_json"},
		{name: "trailing data", value: append(upd("p-trail", `{"id":"x"}`), []byte(` {}`)...), reason: "invalid_json"},
		// Valid, if odd: processed.
		{name: "integer above 2^53", value: upd("p-2e53", `{"id":"opp-p1","owner_id":"u-1","amount":9007199254740993}`), event: "p-2e53", wantActions: 1},
		{name: "escaped control characters", value: upd("p-esc", `{"id":"opp-p2","owner_id":"u-1","amount":5000,"name":"a\u0001\u001fb"}`), event: "p-esc", wantActions: 1},
		{name: "year 1", value: env("p-y1", "record.updated", "0001-01-01T00:00:00Z", `{"id":"opp-p3","owner_id":"u-1","amount":5000,"close_date":"0001-01-01T00:00:00Z"}`), event: "p-y1", wantActions: 1},
		{name: "year 9999", value: env("p-y9999", "record.updated", "9999-12-31T23:59:59Z", `{"id":"opp-p4","owner_id":"u-1","amount":5000,"close_date":"9999-12-31T00:00:00Z"}`), event: "p-y9999", wantActions: 1},
		{name: "same id, first content", value: upd("p-same", `{"id":"opp-p5","owner_id":"u-1","amount":5000}`), event: "p-same", wantActions: 1},
		{name: "same id, other content", value: upd("p-same", `{"id":"opp-p5","owner_id":"u-1","amount":9000}`), event: "p-same", wantActions: 1},
		{name: "newer version", value: env("p-newer", "record.updated", "2026-11-25T00:00:00Z", `{"id":"opp-p6","owner_id":"u-1","amount":5000}`), event: "p-newer", wantActions: 1},
		{name: "older version after it", value: env("p-older", "record.updated", "2026-11-20T00:00:00Z", `{"id":"opp-p6","owner_id":"u-1","amount":8000}`), event: "p-older", wantActions: 0},
	}
	return ps
}

// TestPoison streams every kind of bad input between valid events: each
// goes to the dead-letter topic with its reason and original bytes, the
// valid oddities are processed as documented, and no partition stalls
// (every offset is committed soon after the last message).
func TestPoison(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, worldOptions{partitions: 4, brokerConfigs: map[string]string{"message.max.bytes": "16777216"}})
	wl := workload{records: pick(400, 4000), marker: "POISONMARK"}
	ps := poisons()
	var msgs []kafka.Message
	good := wl.messages()
	half := len(good) / 2
	msgs = append(msgs, good[:half]...)
	for i, p := range ps {
		key := fmt.Sprintf("poison-%d", i)
		if p.event != "" {
			var e struct {
				Record struct {
					ID string `json:"id"`
				} `json:"record"`
			}
			_ = json.Unmarshal(p.value, &e)
			key = e.Record.ID // a record's events in order, on one partition
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: p.value})
	}
	msgs = append(msgs, good[half:]...)
	in := w.start("instance", instanceOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := w.produce(ctx, msgs, 0)
	prod.wait(t, time.Minute)
	produced := time.Now()
	testenv.WaitFor(t, 60*time.Second, "every partition committed to its end (no stall)", w.allCommitted)
	caughtUp := time.Since(produced)
	if !in.term(20 * time.Second) {
		t.Error("the instance did not exit cleanly on SIGTERM")
	}

	v := w.verify(t)
	v.check(t)
	dlq := map[string]kafka.Message{}
	for _, m := range v.dlq {
		dlq[string(m.Key)] = m
	}
	copies := map[string]int{}
	for _, m := range w.kafka.ReadTopic(t, actions.DefaultActionsTopic) {
		var a struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(m.Value, &a)
		copies[a.EventID]++
	}
	dead := 0
	for i, p := range ps {
		key := fmt.Sprintf("poison-%d", i)
		if p.reason == "" {
			if copies[p.event] != p.wantActions {
				t.Errorf("%s: %d actions of event %s, want %d", p.name, copies[p.event], p.event, p.wantActions)
			}
			continue
		}
		m, ok := dlq[key]
		switch {
		case !ok:
			t.Errorf("%s: not dead-lettered", p.name)
		case testenv.Header(m, actions.HeaderDLQReason) != p.reason:
			t.Errorf("%s: reason %q (%s), want %q", p.name, testenv.Header(m, actions.HeaderDLQReason), testenv.Header(m, actions.HeaderDLQDetail), p.reason)
		case !bytes.Equal(m.Value, p.value) && !(len(m.Value) == 0 && strings.Contains(testenv.Header(m, actions.HeaderDLQDetail), "is left out")):
			t.Errorf("%s: the dead letter holds %d bytes, not the original %d", p.name, len(m.Value), len(p.value))
		case testenv.Header(m, actions.HeaderDLQDetail) == "":
			t.Errorf("%s: no detail", p.name)
		default:
			dead++
		}
	}
	if n, ex := w.logsContaining(wl.marker); n > 0 {
		t.Errorf("%d log lines hold a record field value, e.g. %s", n, ex)
	}
	report(t, start, "bad_inputs", len(ps), "dead_lettered_as_expected", dead, "dead_letters", len(v.dlq), "events", v.inputs,
		"actions_lost", len(v.lost), "committed_to_end_after", caughtUp.Round(100*time.Millisecond), "commit_violations", len(v.violations))
}
