package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

// exampleIDs returns the ids of the example automations.
func exampleIDs(t *testing.T) []string {
	t.Helper()
	set, err := loadRules("../../examples/schema.yaml", []string{"../../examples/automations"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range set.Automations {
		ids = append(ids, a.ID)
	}
	if len(ids) < 10 {
		t.Fatalf("only %d example automations: %v", len(ids), ids)
	}
	return ids
}

// TestDevOnce runs `whenthen dev --once` in-process, as `make run` would
// but exiting after the stream: every example automation must complete a
// run, and the story's special cases must show.
func TestDevOnce(t *testing.T) {
	ids := exampleIDs(t)
	for _, tt := range []struct {
		name  string
		extra func(t *testing.T) []string
	}{
		{"embedded redis", func(*testing.T) []string { return nil }},
		{"redis-url", func(t *testing.T) []string { return []string{"--redis-url", testenv.RedisURL(t)} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			var out, errb testenv.Buffer
			env := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
			start := time.Now()
			code := run(ctx, env, append([]string{"dev", "--once", "--speed", "0"}, tt.extra(t)...))
			took := time.Since(start)
			if code != 0 {
				t.Fatalf("exit %d after %v\nstdout:\n%s\nstderr:\n%s", code, took, out.String(), errb.String())
			}
			if took > 60*time.Second {
				t.Errorf("took %v, want under 60s", took)
			}
			got := out.String()
			for _, id := range ids {
				if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d RUN +completed ` + regexp.QuoteMeta(id) + ` `).MatchString(got) {
					t.Errorf("no completed run of %s in the output", id)
				}
			}
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`(?m)RUN +completed renewal-30d timer-\w+ account/A-100 \(1 action`),
				regexp.MustCompile(`(?m)RUN +skipped/duplicate closed-won-brief evt-0012 opportunity/O-2001$`),
				regexp.MustCompile(`(?m)RUN +completed upsell-flow evt-0013 \(2 actions\)$`),
				regexp.MustCompile(`(?m)ACTION flow +upsell-flow → expansion-outreach enrolls C-502$`),
				regexp.MustCompile(`(?m)RUN +completed hot-lead-fast-track evt-0003 lead/L-1001 \(1 action\)$`),
				regexp.MustCompile(`(?m)ACTION brief closed-won-brief opportunity/O-2001 → user:u-9, user:u-42, email:revops@example.com$`),
				regexp.MustCompile(`(?m)DLQ +invalid_json crm\.events offset 20: `),
				regexp.MustCompile(`(?m)^every automation \(14\) completed a run$`),
				regexp.MustCompile(`(?m)TICK +weekly-open-deal-brief: as if its tick of Mon \w+ \d+ 09:00 \(0 9 \* \* MON, America/New_York\) was missed; it runs now, late$`),
				regexp.MustCompile(`(?m)RUN +completed weekly-open-deal-brief tick-\w+ opportunity/O-2002 \(1 action; tick \S+ late\)$`),
				regexp.MustCompile(`(?m)RUN +completed renewal-90d-review timer-\w+ account/A-200 \(1 action; timer 480h\S* late\)$`),
				regexp.MustCompile(`(?m)RUN +completed long-call-follow-up evt-0021 \(1 action\)$`),
				regexp.MustCompile(`watch +kcat -b 127\.0\.0\.1:\d+ -t automations\.actions -C`),
				// The deliverer: flows signed to the webhook sink, briefs in the SMTP sink's inbox.
				regexp.MustCompile(`(?m)DELIVER flow expansion-outreach → C-502 \(200, \d+ ms after it fired; signature ok\)$`),
				regexp.MustCompile(`(?m)DELIVER brief → u-9@acme\.example, u-42@acme\.example, revops@example\.com "Closed Won: Northwind platform expansion"$`),
				regexp.MustCompile(`(?m)^17 of 17 actions carried out \(0 failed\): 12 webhook calls, 5 emails$`),
			} {
				if !want.MatchString(got) {
					t.Errorf("output lacks %v", want)
				}
			}
			// The duplicate made no second brief.
			if n := strings.Count(got, "ACTION brief closed-won-brief"); n != 1 {
				t.Errorf("%d closed-won briefs, want 1", n)
			}
			if m := regexp.MustCompile(`keys (wt-dev:[0-9a-f]+:)\*, deleted at exit`).FindStringSubmatch(got); m != nil {
				rdb, _ := testenv.Redis(t)
				if keys, err := rdb.Keys(ctx, m[1]+"*").Result(); err != nil || len(keys) > 0 {
					t.Errorf("after exit, Redis holds %d keys with prefix %s (%v): %.5q", len(keys), m[1], err, keys)
				}
			} else if tt.name == "redis-url" {
				t.Errorf("no key prefix in the banner")
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", got, errb.String())
			}
		})
	}
}

// TestDevOnceMissing: with rules the stream cannot run, --once exits 1
// and names the automations that never ran.
func TestDevOnceMissing(t *testing.T) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "r.yaml")
	os.WriteFile(rulesFile, []byte("workspace: acme\nautomations:\n  - id: never\n    when: {record: lead}\n    if: record.score > 1000\n    then: {flow: {id: f}}\n"), 0o644)
	eventsFile := filepath.Join(dir, "e.jsonl")
	os.WriteFile(eventsFile, []byte(`{"id":"e1","type":"record.created","time":"{{now}}","workspace":"acme","object":"lead","record":{"id":"L1","score":5}}`+"\n"), 0o644)
	code, _, errs := runCmd(t, "dev", "--once", "--speed", "0", "--settle-timeout", "2s", "--rules", rulesFile, "--events", eventsFile)
	if code != 1 || !strings.Contains(errs, "no completed run of 1 automation(s) within 2s of the stream: never") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
}

func TestDevUsage(t *testing.T) {
	dir := t.TempDir()
	badEvents := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(badEvents, []byte(`{"id":"e1","time":"{{due(new-lead-nurture)}}"}`+"\n"), 0o644)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"dev", "--speed", "-1"}, 2, "--speed must not be negative"},
		{[]string{"dev", "extra"}, 2, "usage: whenthen dev"},
		{[]string{"dev", "--log-level", "loud", "--events", badEvents}, 2, `--log-level: log level "loud"`},
		{[]string{"dev", "--rules", "../../rules/testdata/who.bad.yaml"}, 1, "who.bad.yaml:"},
		{[]string{"dev", "--once", "--events", badEvents}, 1, "bad.jsonl:1: {{due(new-lead-nurture)}}: automation new-lead-nurture has a record trigger, not a date trigger"},
	} {
		code, _, errs := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errs, tt.code, tt.msg)
		}
	}
}

func TestDevPlaceholders(t *testing.T) {
	set, err := loadRules("../../examples/schema.yaml", []string{"../../examples/automations"})
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	d, err := dateTrigger(set, "renewal-30d")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("date", func(t *testing.T) {
		for _, tt := range []struct {
			now, due time.Time
		}{
			// 30 days before at 09:00 New York: the last 09:00 at or
			// before now+3s.
			{time.Date(2026, 11, 25, 8, 59, 0, 0, ny), time.Date(2026, 11, 24, 9, 0, 0, 0, ny)},
			{time.Date(2026, 11, 25, 8, 59, 58, 0, ny), time.Date(2026, 11, 25, 9, 0, 0, 0, ny)},
			{time.Date(2026, 11, 25, 23, 0, 0, 0, ny), time.Date(2026, 11, 25, 9, 0, 0, 0, ny)},
			// Around the switch to daylight saving time (2027-03-14).
			{time.Date(2027, 3, 14, 12, 0, 0, 0, ny), time.Date(2027, 3, 14, 9, 0, 0, 0, ny)},
			{time.Date(2027, 3, 14, 3, 30, 0, 0, ny), time.Date(2027, 3, 13, 9, 0, 0, 0, ny)},
		} {
			value, due, err := demoDate(d, tt.now)
			if err != nil || !due.Equal(tt.due) || !d.Due(value).Equal(tt.due) {
				t.Errorf("now %v: value %v, due %v, %v; want due %v", tt.now, value, due, err, tt.due)
			}
		}
		// Without a time of day the due time is now+3s exactly.
		plain := &rules.DateTrigger{Offset: -48 * time.Hour, Location: time.UTC}
		now := time.Date(2026, 11, 25, 10, 0, 0, 500, time.UTC)
		value, due, err := demoDate(plain, now)
		if err != nil || !due.Equal(time.Date(2026, 11, 25, 10, 0, 3, 0, time.UTC)) || !value.Equal(due.Add(48*time.Hour)) {
			t.Errorf("no at: value %v, due %v, %v", value, due, err)
		}
	})
	t.Run("expand", func(t *testing.T) {
		now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC) // 10:00 New York
		for _, tt := range []struct{ in, want, err string }{
			{`"{{now}}"`, `"2026-11-25T15:00:00Z"`, ""},
			{`"{{ now - 21d }}" "{{now+1d12h}}" "{{now-90s}}"`, `"2026-11-04T15:00:00Z" "2026-11-27T03:00:00Z" "2026-11-25T14:58:30Z"`, ""},
			{`"{{date(renewal-30d)}}" "{{due(renewal-30d)-1m}}"`, `"2026-12-25T14:00:00Z" "2026-11-25T13:59:00Z"`, ""},
			{`{"x":"{{now}}"`, `{"x":"2026-11-25T15:00:00Z"`, ""},
			{`"{{later}}"`, "", "{{later}}: want now, due(ID) or date(ID)"},
			{`"{{now+5x}}"`, "", `{{now+5x}}: bad offset: time: unknown unit "x"`},
			{`"{{date(nope)}}"`, "", "{{date(nope)}}: no automation nope in the rules"},
		} {
			got, err := expandLine(tt.in, now, set)
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Errorf("%s: got %q, %v; want error %q", tt.in, got, err, tt.err)
				}
				continue
			}
			if err != nil || got != tt.want {
				t.Errorf("%s: got %q, %v; want %q", tt.in, got, err, tt.want)
			}
		}
	})
	t.Run("keys", func(t *testing.T) {
		for _, tt := range []struct{ line, key string }{
			{`{"id":"e","type":"record.created","object":"lead","record":{"id":"L-1"}}`, "L-1"},
			{`{"id":"e","type":"tracker.detected","tracker":{"name":"x","call_id":"c-1"},"account":{"id":"A-1"}}`, "A-1"},
			{`{"id":"e","type":"tracker.detected","tracker":{"name":"x","call_id":"c-1"}}`, "c-1"},
			{`{"id":"e","type":"record.upd`, ""},
		} {
			if got := string(summarizeEvent(tt.line).key); got != tt.key {
				t.Errorf("%s: key %q, want %q", tt.line, got, tt.key)
			}
		}
	})
}

// TestKcat drives the dev setup with kcat, the way an operator joins it:
// events (docs/events.md) produced with `kcat -P -K:`, actions read back with
// `kcat -C ... -o beginning -e`.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is not installed, and CI=true: install it (apt-get install -y kcat) so that this test runs in CI")
		}
		t.Skip("kcat is not installed (apt-get install -y kcat); skipping the kcat test")
	}
	empty := filepath.Join(t.TempDir(), "none.jsonl")
	os.WriteFile(empty, []byte("# no events: kcat sends them\n"), 0o644)
	dev := startCmd(t, nil, "dev", "--events", empty)
	addr := dev.waitFor(t, regexp.MustCompile(`watch +kcat -b (\S+) -t automations\.actions -C`), 30*time.Second)
	dev.waitFor(t, regexp.MustCompile(`stream sent`), 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// docs/events.md's example, a tracker event and a lead, keyed by record
	// (or account) id.
	events := strings.Join([]string{
		`006A1:{"id":"evt-9f1c","type":"record.updated","time":"2026-11-24T10:00:00Z","workspace":"acme","object":"opportunity","record":{"id":"006A1","stage":"Closed Won","amount":250000,"owner_id":"u-7"},"before":{"stage":"Negotiation"},"partial":false}`,
		`A-1:{"id":"evt-t1","type":"tracker.detected","time":"2026-11-24T10:01:00Z","workspace":"acme","tracker":{"name":"Upsell opportunity","call_id":"call-1","confidence":0.9,"participants":[{"contact_id":"003X","role":"customer","name":"Ann"},{"contact_id":"u-7","role":"rep","name":"Rep"}]},"account":{"id":"A-1","tier":"Enterprise"}}`,
		`L-9:{"id":"evt-l9","type":"record.created","time":"2026-11-24T10:02:00Z","workspace":"acme","object":"lead","record":{"id":"L-9","source":"web","country":"FR","score":10}}`,
	}, "\n") + "\n"
	produce := exec.CommandContext(ctx, kcat, "-P", "-b", addr, "-t", "crm.events", "-K:")
	produce.Stdin = strings.NewReader(events)
	if b, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, b)
	}

	type keyed struct {
		key string
		a   actions.Action
	}
	var got []keyed
	for {
		consume := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", "automations.actions", "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n")
		b, err := consume.Output()
		if err != nil {
			t.Fatalf("kcat -C: %v\n%s", err, b)
		}
		got = got[:0]
		for line := range strings.Lines(string(b)) {
			k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
			var a actions.Action
			if err := json.Unmarshal([]byte(v), &a); err != nil {
				t.Fatalf("kcat -C printed %q: %v", line, err)
			}
			got = append(got, keyed{k, a})
		}
		if len(got) >= 3 || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling an external tool; nothing to wait on
	}
	slices.SortFunc(got, func(x, y keyed) int { return strings.Compare(x.a.AutomationID, y.a.AutomationID) })
	var summary []string
	for _, g := range got {
		s := g.key + " " + g.a.AutomationID + " " + g.a.Type + " " + g.a.EventID
		switch {
		case g.a.Brief != nil:
			s += " " + strings.Join(g.a.Brief.Recipients, ",")
		case g.a.Flow != nil:
			s += " " + g.a.Flow.ID + ":" + g.a.Flow.PersonID
		}
		if g.a.Workspace != "acme" || !strings.HasPrefix(g.a.ActionID, "a-") {
			t.Errorf("action %+v: want workspace acme and an a- id", g.a)
		}
		summary = append(summary, s)
	}
	want := []string{
		"006A1 closed-won-brief brief evt-9f1c user:u-7,user:u-42,email:revops@example.com",
		"L-9 new-lead-nurture flow evt-l9 inbound-nurture:L-9",
		"003X upsell-flow flow evt-t1 expansion-outreach:003X",
	}
	if !slices.Equal(summary, want) {
		t.Fatalf("actions read with kcat:\n%s\nwant:\n%s\ndev stdout:\n%s\nstderr:\n%s",
			strings.Join(summary, "\n"), strings.Join(want, "\n"), dev.stdout, dev.stderr)
	}
}
