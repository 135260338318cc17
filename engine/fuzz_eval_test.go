package engine_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/rules"
)

// FuzzEvaluate runs fuzzed message bytes through the envelope decoder and,
// when they decode, through an engine with the example automations
// (examples/automations, examples/schema.yaml) on the in-memory store
// (store.Memory, which passes the Redis store's conformance suite):
// nothing panics, Process and Commit succeed, and every run has a valid
// outcome whose actions are the ones it lists.
func FuzzEvaluate(f *testing.F) {
	schema, err := crm.LoadSchema("../examples/schema.yaml")
	if err != nil {
		f.Fatal(err)
	}
	c, err := rules.NewCompiler(rules.CompilerOptions{Schema: schema})
	if err != nil {
		f.Fatal(err)
	}
	srcs, err := rules.ReadFiles("../examples/automations")
	if err != nil {
		f.Fatal(err)
	}
	set, err := c.Compile(srcs)
	if err != nil {
		f.Fatal(err)
	}
	dec, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: schema, Limits: c.Limits()})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	// fresh is an engine on an empty in-memory store, made again every
	// 1000 events to keep the state small over a long run.
	fresh := func(t testing.TB) *engine.Engine {
		st, err := store.NewMemory(store.Options{Schema: schema, Limits: c.Limits(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(engine.Options{Rules: set, Schema: schema, Store: st,
			Clock: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	eng := fresh(f)

	// Seeds: the sample stream, its placeholders resolved.
	file, err := os.Open("../examples/events.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	placeholder := strings.NewReplacer("{{now}}", "2026-11-24T10:00:00Z", "{{now-21d}}", "2026-11-03T10:00:00Z")
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = placeholder.Replace(line)
		for strings.Contains(line, "{{") { // {{date(ID)}} and the like
			i := strings.Index(line, "{{")
			j := strings.Index(line[i:], "}}")
			if j < 0 {
				break
			}
			line = line[:i] + "2026-12-24T14:00:00Z" + line[i+j+2:]
		}
		f.Add([]byte(line))
	}
	f.Add([]byte(`{"id":"e","type":"record.updated","time":"2026-11-24T10:00:00Z","workspace":"acme","object":"opportunity","partial":true,"record":{"id":"O-1","stage":null}}`))
	f.Add([]byte(`{"id":"e","type":"tracker.detected","time":"2026-11-24T10:00:00Z","workspace":"acme","tracker":{"name":"Upsell opportunity","confidence":2,"participants":[{"role":"customer"},{"contact_id":"","role":"customer"}]}}`))

	ctx := context.Background()
	n := 0
	f.Fuzz(func(t *testing.T, value []byte) {
		ev, err := dec.Decode(nil, value)
		if err != nil {
			if ingest.Reason(err) == ingest.ReasonInternal {
				t.Fatalf("internal decode error: %v", err)
			}
			return
		}
		if n++; n%1000 == 0 {
			eng = fresh(t)
		}
		out, err := eng.Process(ctx, []*engine.Event{ev}, "")
		if err != nil {
			t.Fatalf("Process: %v", err)
		}
		listed := map[string]bool{}
		for _, r := range out.Runs {
			if r.EventID != ev.ID || r.Workspace != ev.Workspace || r.AutomationID == "" || r.RunID == "" {
				t.Fatalf("run %+v for event %q of workspace %q", r, ev.ID, ev.Workspace)
			}
			switch r.Outcome {
			case actions.OutcomeCompleted:
				if len(r.ActionIDs) == 0 || r.Reason != "" {
					t.Fatalf("completed run without actions, or with a reason: %+v", r)
				}
			case actions.OutcomeSkipped:
				if r.Reason == "" || len(r.ActionIDs) != 0 {
					t.Fatalf("skipped run without a reason, or with actions: %+v", r)
				}
			case actions.OutcomeError:
				if r.Reason == "" || r.Error == "" || len(r.ActionIDs) != 0 {
					t.Fatalf("error run without reason or message, or with actions: %+v", r)
				}
			default:
				t.Fatalf("run outcome %q: %+v", r.Outcome, r)
			}
			for _, id := range r.ActionIDs {
				listed[id] = true
			}
		}
		for _, a := range out.Actions {
			if !listed[a.ActionID] || a.Workspace != ev.Workspace || a.EventID != ev.ID {
				t.Fatalf("action %+v not listed by a completed run of this event", a)
			}
			switch a.Type {
			case actions.TypeBrief:
				if a.Brief == nil || len(a.Brief.Recipients) == 0 {
					t.Fatalf("brief without recipients: %+v", a)
				}
			case actions.TypeFlow:
				if a.Flow == nil || a.Flow.ID == "" || a.Flow.PersonID == "" {
					t.Fatalf("flow without id or person: %+v", a)
				}
			default:
				t.Fatalf("action type %q", a.Type)
			}
			if b := a.AppendJSON(nil); !json.Valid(b) {
				t.Fatalf("action encodes to invalid JSON: %s", b)
			}
		}
		if len(listed) != len(out.Actions) {
			t.Fatalf("runs list %d actions, %d emitted", len(listed), len(out.Actions))
		}
		if err := eng.Commit(ctx, out); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	})
}
