package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/internal/testenv"
)

func writeAuthoringFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

var backtestArgs = []string{"backtest", "--rules", authoringTestdata + "backtest/new", "--baseline", "../../examples/automations",
	"--schema", "../../examples/schema.yaml"}

// TestBacktestEventsFile compares the example rules with a changed copy
// over a JSONL history, as text and as JSON.
func TestBacktestEventsFile(t *testing.T) {
	for _, tt := range []struct {
		extra  []string
		golden string
	}{
		{nil, "expected.txt"},
		{[]string{"--format", "json", "--examples", "1"}, "expected.json"},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			args := append(append(append([]string{}, backtestArgs...), "--events", authoringTestdata+"backtest/events.jsonl"), tt.extra...)
			code, out, errs := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, authoringTestdata+"backtest/"+tt.golden, out)
		})
	}
}

// TestBacktestKafkaTopic reads the same history from Kafka: the same
// report, no consumer group created.
func TestBacktestKafkaTopic(t *testing.T) {
	const topic = "crm.events"
	c := testenv.Kafka(t, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(c.Addrs()...), Topic: topic, BatchTimeout: 10 * time.Millisecond}
	defer w.Close()
	data, err := os.ReadFile(authoringTestdata + "backtest/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var last time.Time
	for sc.Scan() {
		var ev struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			last = ev.Time
		}
		if err := w.WriteMessages(ctx, kafka.Message{Value: append([]byte(nil), sc.Bytes()...), Time: last}); err != nil {
			t.Fatal(err)
		}
	}
	args := append(append([]string{}, backtestArgs...), "--kafka-brokers", strings.Join(c.Addrs(), ","), "--topic", topic,
		"--from", "2026-11-01T00:00:00Z")
	code, out, errs := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want, _ := os.ReadFile(authoringTestdata + "backtest/expected.txt")
	// Only where the undecodable message is differs.
	wantText := strings.Replace(string(want), authoringTestdata+"backtest/events.jsonl:11", "crm.events/0@10", 1)
	if out != wantText {
		t.Fatalf("from Kafka:\n%s\nwant:\n%s", out, wantText)
	}
	lg, err := (&kafka.Client{Addr: kafka.TCP(c.Addrs()...)}).ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil || len(lg.Groups) != 0 {
		t.Fatalf("groups %+v, %v; want none", lg, err)
	}
}

func TestBacktestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"backtest"}, 2, "usage: whenthen backtest"},
		{[]string{"backtest", "--rules", "a", "--baseline", "b"}, 2, "usage: whenthen backtest"},
		{[]string{"backtest", "--rules", "a", "--baseline", "b", "--events", "x", "--kafka-brokers", "h:1"}, 2, "usage: whenthen backtest"},
		{[]string{"backtest", "--rules", "a", "--baseline", "b", "--kafka-brokers", "h:1"}, 2, "--from is required with --kafka-brokers"},
		{[]string{"backtest", "--rules", "a", "--baseline", "b", "--events", "x", "--from", "2026-01-01T00:00:00Z"}, 2, "--from and --to apply to --kafka-brokers only"},
		{[]string{"backtest", "--rules", "a", "--baseline", "b", "--events", "x", "--until", "soon"}, 2, `--until: want an RFC 3339 time, got "soon"`},
		{[]string{"backtest", "--rules", "../../examples/automations", "--baseline", "../../examples/automations", "--events", "x"}, 1, "baseline rules:"},
	} {
		code, _, errs := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errs, tt.code, tt.msg)
		}
	}
}
