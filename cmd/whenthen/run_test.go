package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/testenv"
)

func runTestEnv(vars map[string]string) (*cmdEnv, *testenv.Buffer, *testenv.Buffer) {
	out, errb := &testenv.Buffer{}, &testenv.Buffer{}
	return &cmdEnv{stdout: out, stderr: errb, getenv: func(k string) string { return vars[k] }}, out, errb
}

const runRules = `
automations:
  - id: big-deal
    when: {record: opportunity}
    if: record.amount > 1000
    fire: every_time
    then:
      brief: {kind: opportunity, recipients: ["user:u-1"]}
`

func TestRunConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "whenthen.yaml")
	if err := os.WriteFile(cfgPath, []byte(`
kafka:
  brokers: [file:9092]
  group: from-file
  sasl: {mechanism: SCRAM-SHA-512, username: file-user}
topics: {dlq: file.dlq}
redis: {url: "redis://file:6379/0"}
rules: [file-rules]
batch_size: 7
shutdown_timeout: 12s
decoder:
  type: debezium
  tables:
    public.accounts: {object: account, workspace: acme, columns: {acct_name: name}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c *runConfig)
	}{
		{"file over defaults", nil, []string{"--config", cfgPath}, func(t *testing.T, c *runConfig) {
			runEq(t, "brokers", c.Kafka.Brokers, []string{"file:9092"})
			runEq(t, "group", c.Kafka.Group, "from-file")
			runEq(t, "dlq", c.Topics.DLQ, "file.dlq")
			runEq(t, "input topic (default)", c.Topics.Input, ingest.DefaultTopic)
			runEq(t, "batch", c.BatchSize, 7)
			runEq(t, "shutdown", c.ShutdownTimeout, 12*time.Second)
			runEq(t, "rules", c.Rules, []string{"file-rules"})
			runEq(t, "table", c.Decoder.Tables["public.accounts"].Columns["acct_name"], "name")
			runEq(t, "sasl", c.Kafka.SASL.Username, "file-user")
		}},
		{"env over file", map[string]string{
			"WHENTHEN_CONFIG": cfgPath, "WHENTHEN_GROUP": "from-env", "WHENTHEN_RULES": "env-a,env-b",
			"WHENTHEN_KAFKA_SASL_PASSWORD": "secret", "WHENTHEN_KAFKA_TLS": "true", "WHENTHEN_BATCH_SIZE": "9",
		}, nil, func(t *testing.T, c *runConfig) {
			runEq(t, "group", c.Kafka.Group, "from-env")
			runEq(t, "rules", c.Rules, []string{"env-a", "env-b"})
			runEq(t, "password", c.Kafka.SASL.Password, "secret")
			runEq(t, "tls", c.Kafka.TLS.Enabled, true)
			runEq(t, "batch", c.BatchSize, 9)
			runEq(t, "brokers (file)", c.Kafka.Brokers, []string{"file:9092"})
		}},
		{"flags over env", map[string]string{"WHENTHEN_GROUP": "from-env", "WHENTHEN_RULES": "env-a", "WHENTHEN_KAFKA_TLS": "true"},
			[]string{"--config", cfgPath, "--group", "from-flag", "--rules", "f1", "--rules", "f2,f3", "--kafka-tls=false",
				"--kafka-brokers", "b1:1,b2:2"},
			func(t *testing.T, c *runConfig) {
				runEq(t, "group", c.Kafka.Group, "from-flag")
				runEq(t, "rules", c.Rules, []string{"f1", "f2", "f3"})
				runEq(t, "tls", c.Kafka.TLS.Enabled, false)
				runEq(t, "brokers", c.Kafka.Brokers, []string{"b1:1", "b2:2"})
				runEq(t, "redis (file)", c.Redis.URL, "redis://file:6379/0")
			}},
		{"defaults", nil, nil, func(t *testing.T, c *runConfig) {
			runEq(t, "brokers", c.Kafka.Brokers, []string{"localhost:9092"})
			runEq(t, "group", c.Kafka.Group, "whenthen")
			runEq(t, "redis", c.Redis.URL, "redis://localhost:6379/0")
			runEq(t, "metrics", c.Metrics.Listen, ":9464")
			runEq(t, "actions topic", c.Topics.Actions, actions.DefaultActionsTopic)
			runEq(t, "runs topic", c.Topics.Runs, actions.DefaultRunsTopic)
			runEq(t, "dlq topic", c.Topics.DLQ, actions.DefaultDLQTopic)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _, stderr := runTestEnv(tc.env)
			c, code, ok := loadRunConfig(env, tc.args)
			if !ok {
				t.Fatalf("loadRunConfig: code %d, stderr %s", code, stderr)
			}
			tc.check(t, c)
		})
	}
}

func runEq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s = %s, want %s", what, g, w)
	}
}

func TestRunUsageErrors(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(rules, []byte(runRules), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("kafka:\n  brokerz: [x:1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"help", nil, []string{"-h"}, 0, "usage: whenthen run"},
		{"unknown flag", nil, []string{"--nope"}, 2, "flag provided but not defined"},
		{"positional", nil, []string{"--rules", rules, "extra"}, 2, "unexpected arguments"},
		{"no rules", nil, nil, 2, "no rules"},
		{"unknown config key", nil, []string{"--config", unknown, "--rules", rules}, 2, "field brokerz not found"},
		{"missing config", nil, []string{"--config", filepath.Join(dir, "none.yaml")}, 2, "no such file"},
		{"bad env", map[string]string{"WHENTHEN_BATCH_SIZE": "many"}, []string{"--rules", rules}, 2, "WHENTHEN_BATCH_SIZE"},
		{"bad duration", nil, []string{"--rules", rules, "--shutdown-timeout", "soon"}, 2, "invalid value"},
		{"sasl", nil, []string{"--rules", rules, "--kafka-sasl-mechanism", "GSSAPI", "--kafka-sasl-username", "u"}, 2, "GSSAPI"},
		{"decoder", nil, []string{"--rules", rules, "--decoder", "avro"}, 2, "avro"},
		{"debezium without tables", nil, []string{"--rules", rules, "--decoder", "debezium"}, 2, "table mapping"},
		{"broker", nil, []string{"--rules", rules, "--kafka-brokers", "nohost"}, 2, "want host:port"},
		{"redis", nil, []string{"--rules", rules, "--redis-url", "http://x"}, 2, "want redis, rediss, redis+cluster or rediss+cluster"},
		{"batch", nil, []string{"--rules", rules, "--batch-size", "0"}, 2, "--batch-size"},
		{"log", nil, []string{"--rules", rules, "--log-level", "loud"}, 2, "log level"},
		{"snapshot encoding", map[string]string{"WHENTHEN_SNAPSHOT_ENCODING": "xml"}, []string{"--rules", rules}, 2, `--snapshot-encoding "xml": want binary or json`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _, stderr := runTestEnv(tc.env)
			code := run(context.Background(), env, append([]string{"run"}, tc.args...))
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.want)
			}
		})
	}
}

func TestRunRuleErrorsExit1(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(rules, []byte(strings.Replace(runRules, "record.amount", "record.amuont", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	env, _, stderr := runTestEnv(nil)
	code := run(context.Background(), env, []string{"run", "--rules", rules, "--metrics-listen", "127.0.0.1:0"})
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), rules+":5:15:") || !strings.Contains(stderr.String(), "amuont") {
		t.Errorf("stderr does not give the error's position:\n%s", stderr)
	}
}

// TestRunServes starts `whenthen run` against kfake and a Redis of its
// own, waits until /readyz answers 200, reloads through the SIGHUP
// channel, and stops it through its context: exit 0.
func TestRunServes(t *testing.T) {
	c := testenv.Kafka(t, ingest.DefaultTopic, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic)
	srv := testenv.StartRedis(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(runRules), 0o644); err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{}, 1)
	env, _, stderr := runTestEnv(map[string]string{"WHENTHEN_REDIS_URL": srv.URL()})
	env.reload = reload
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, env, []string{"run", "--kafka-brokers", strings.Join(c.Addrs(), ","), "--rules", dir,
			"--metrics-listen", "127.0.0.1:0", "--shutdown-timeout", "5s", "--reload-interval", "-1s"})
	}()
	var addr string
	runWaitLog(t, stderr, done, "service starting", func(rec map[string]any) { addr, _ = rec["metrics"].(string) })
	runWaitReady(t, "http://"+addr+"/readyz", done)
	reload <- struct{}{}
	runWaitLog(t, stderr, done, "rules reloaded", nil)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("whenthen run did not stop within 10s of its context")
	}
}

// waitLog waits for a JSON log record with msg and passes it to fn.
func runWaitLog(t *testing.T, stderr *testenv.Buffer, done <-chan int, msg string, fn func(map[string]any)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("whenthen run exited %d; stderr:\n%s", code, stderr)
		default:
		}
		for line := range strings.Lines(stderr.String()) {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				if fn != nil {
					fn(rec)
				}
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q log record; stderr:\n%s", msg, stderr)
}

func runWaitReady(t *testing.T, url string, done <-chan int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("whenthen run exited %d", code)
		default:
		}
		res, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}
