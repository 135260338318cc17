package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestRunInputLimits sets every input size cap through `whenthen run`
// (flags for some, the config file for the others, so that both ways are
// exercised) to a small value and sends one message over each: each is
// dead-lettered with its reason and a detail naming the limit, and a
// valid event after them is processed.
func TestRunInputLimits(t *testing.T) {
	c := testenv.Kafka(t, ingest.DefaultTopic, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic)
	srv := testenv.StartRedis(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rulesPath := write("r.yaml", runRules)
	schema := write("schema.yaml", "objects:\n  opportunity:\n    fields:\n      competitors: list(string)\n      meta: map(string, dyn)\n")
	cfg := write("whenthen.yaml", "decoder:\n  max_elements: 50\nlimits:\n  map_entries: 10\n  map_depth: 3\n")
	env, _, stderr := runTestEnv(map[string]string{"WHENTHEN_LIMIT_LIST_LEN": "5"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, env, []string{"run", "--config", cfg, "--kafka-brokers", strings.Join(c.Addrs(), ","),
			"--redis-url", srv.URL(), "--rules", rulesPath, "--schema", schema,
			"--metrics-listen", "127.0.0.1:0", "--shutdown-timeout", "5s", "--reload-interval", "-1s",
			"--decoder-max-bytes", "2048", "--decoder-max-depth", "8", "--limit-string-bytes", "100"})
	}()
	var addr string
	runWaitLog(t, stderr, done, "service starting", func(rec map[string]any) { addr, _ = rec["metrics"].(string) })
	runWaitReady(t, "http://"+addr+"/readyz", done)

	opp := func(id, record string) string {
		return fmt.Sprintf(`{"id":%q,"type":"record.updated","time":"2026-11-24T10:00:00Z","object":"opportunity","record":{"id":"o1",%s}}`, id, record)
	}
	cases := []struct {
		name, value, reason, detail string
	}{
		{"message bytes", opp("e1", `"name":"`+strings.Repeat("x", 2100)+`"`), "too_large", "over the limit of 2048"},
		{"nesting depth", opp("e2", `"x":[[[[[[[[1]]]]]]]]`), "too_deep", "deeper than the limit of 8"},
		{"elements", opp("e3", `"x":[`+strings.Repeat("1,", 60)+`1]`), "too_large", "more than the limit of 50 elements"},
		{"string bytes", opp("e4", `"name":"`+strings.Repeat("x", 150)+`"`), "invalid_field", "over the limit of 100"},
		{"list length", opp("e5", `"competitors":["a","b","c","d","e","f"]`), "invalid_field", "over the limit of 5"},
		{"map entries", opp("e6", `"meta":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11}`), "invalid_field", "limit of 10"},
		{"map depth", opp("e7", `"meta":{"a":{"b":{"c":{"d":1}}}}`), "invalid_field", "limit of 3"},
	}
	w := &kafka.Writer{Addr: kafka.TCP(c.Addrs()...), Topic: ingest.DefaultTopic, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var msgs []kafka.Message
	for i, tc := range cases {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: []byte(tc.value)})
	}
	msgs = append(msgs, kafka.Message{Key: []byte("o1"), Value: []byte(opp("ok", `"amount":5000,"competitors":["a"],"meta":{"a":{"b":1}}`))})
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := w.WriteMessages(wctx, msgs...); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the dead letters and the action", func() bool {
		return c.Count(actions.DefaultDLQTopic) >= int64(len(cases)) && c.Count(actions.DefaultActionsTopic) >= 1
	})
	dlq := c.ReadTopic(t, actions.DefaultDLQTopic)
	acts := c.ReadTopic(t, actions.DefaultActionsTopic)
	if len(dlq) != len(cases) || len(acts) != 1 {
		t.Fatalf("%d dead letters and %d actions, want %d and 1", len(dlq), len(acts), len(cases))
	}
	for i, tc := range cases {
		m := dlq[i]
		var reason, detail string
		for _, h := range m.Headers {
			switch h.Key {
			case actions.HeaderDLQReason:
				reason = string(h.Value)
			case actions.HeaderDLQDetail:
				detail = string(h.Value)
			}
		}
		if string(m.Key) != fmt.Sprintf("k%d", i) || reason != tc.reason || !strings.Contains(detail, tc.detail) {
			t.Errorf("%s: dead letter %s with reason %q, detail %q; want %q and a detail with %q", tc.name, m.Key, reason, detail, tc.reason, tc.detail)
		}
	}
	if !strings.Contains(string(acts[0].Value), `"event_id":"ok"`) {
		t.Errorf("action %s, want the valid event's", acts[0].Value)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, stderr)
	}
}
