package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/internal/testenv"
)

// TestExplainGolden explains events against the example rules, as text
// and as JSON.
func TestExplainGolden(t *testing.T) {
	dir := authoringTestdata + "explain/"
	for _, tt := range []struct {
		event  string
		extra  []string
		golden string
	}{
		{"closed-won.json", nil, "closed-won.txt"},
		{"closed-won.json", []string{"--format", "json"}, "closed-won.golden.json"},
		{"account.json", nil, "account.txt"},
		{"tracker.json", nil, "tracker.txt"},
		{"tracker.json", []string{"--automation", "closed-won-brief"}, "tracker-closed-won-brief.txt"},
		{"acmee.json", nil, "acmee.txt"},
		{"acmee.json", []string{"--format", "json"}, "acmee.golden.json"},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			args := append([]string{"explain", "--rules", "../../examples/automations", "--schema", "../../examples/schema.yaml",
				"--event", dir + tt.event}, tt.extra...)
			code, out, errs := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, dir+tt.golden, out)
			if strings.HasSuffix(tt.golden, ".json") && !json.Valid([]byte(out)) {
				t.Fatal("invalid JSON")
			}
		})
	}
}

// TestExplainLiveState explains an event against the state `whenthen
// eval` left in Redis: the cooldown it set shows, and the state is only
// read.
func TestExplainLiveState(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	writeAuthoringFile(t, events, `{"id":"e1","type":"record.created","time":"2026-11-01T09:00:00Z","workspace":"acme","object":"opportunity","record":{"id":"006-1","stage":"Closed Won","amount":300000,"owner_id":"u-1"}}
{"id":"e2","type":"record.updated","time":"2026-11-01T10:00:00Z","workspace":"acme","object":"opportunity","partial":true,"record":{"id":"006-1","stage":"Negotiation"}}
`)
	base := []string{"--rules", "../../examples/automations", "--schema", "../../examples/schema.yaml", "--redis-url", testenv.RedisURL(t), "--redis-prefix", prefix}
	if code, _, errs := runCmd(t, append([]string{"eval", "--events", events}, base...)...); code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errs)
	}
	keys := func() map[string]string {
		ks, err := rdb.Keys(context.Background(), prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, k := range ks {
			out[k], _ = rdb.Dump(context.Background(), k).Result()
		}
		return out
	}
	before := keys()
	if len(before) == 0 {
		t.Fatal("eval left no state")
	}
	event := filepath.Join(dir, "e3.json")
	writeAuthoringFile(t, event, `{"id":"e3","type":"record.updated","time":"2026-11-01T11:00:00Z","workspace":"acme","object":"opportunity","partial":true,"record":{"id":"006-1","stage":"Closed Won"}}`)
	code, out, errs := runCmd(t, append([]string{"explain", "--event", event, "--automation", "closed-won-brief"}, base...)...)
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"state: a read-only copy of the live state this event reads",
		"closed-won-brief: skipped (cooldown)",
		"    true   record.amount > 200000\n", // the amount comes from the stored record
		"  before     false (the record's stored state); fire: on_enter\n",
		"  why        cooldown: it already ran for this record within 24h0m0s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	after := keys()
	if len(after) != len(before) {
		t.Fatalf("keys %d before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("key %s written", k)
		}
	}
}

func TestExplainUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"explain"}, 2, "usage: whenthen explain"},
		{[]string{"explain", "--rules", "x", "--event", "y", "--format", "yaml"}, 2, `unknown --format "yaml"`},
		{[]string{"explain", "--schema", "../../examples/schema.yaml", "--rules", "../../examples/automations", "--event", authoringTestdata + "explain/bad.json"}, 1,
			"explain/bad.json: not a valid event: invalid_field: time: "},
		{[]string{"explain", "--schema", "../../examples/schema.yaml", "--rules", "../../examples/automations", "--event", authoringTestdata + "explain/tracker.json", "--automation", "nope"}, 1,
			`no automation "nope" in the rules`},
	} {
		code, _, errs := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errs, tt.code, tt.msg)
		}
	}
}
