package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeliverCheckAndUsage(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`
kafka: {brokers: ["127.0.0.1:9092"], group: deliver-test}
redis: {prefix: "x:"}
batch_size: 200
destinations:
  - name: hook
    workspaces: [acme]
    webhook: {url: "https://hooks.example.com/whenthen", secret_env: HOOK_SECRET}
`), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("kafka: {brokers: [\"127.0.0.1:9092\"]}\ndestinations:\n  - name: Hook\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("kafka: {brokerz: [x]}\n"), 0o644)
	for _, tc := range []struct {
		name   string
		vars   map[string]string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"valid", map[string]string{"WHENTHEN_HOOK_SECRET": "", "HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			[]string{"--config", good, "--check"}, 0, "ok: " + good + ": 1 destination(s)", ""},
		{"config from the environment", map[string]string{"WHENTHEN_CONFIG": good, "HOOK_SECRET": "a-raw-secret-of-enough-bytes"},
			[]string{"--check"}, 0, "1 destination(s)", ""},
		{"secret missing", nil, []string{"--config", good, "--check"}, 1, "", good + ":6:5: destination hook: webhook.secret_env: the environment variable HOOK_SECRET is not set"},
		{"bad config", nil, []string{"--config", bad, "--check"}, 1, "", bad + ":3:5: destination Hook: invalid name"},
		{"unknown key", nil, []string{"--config", unknown, "--check"}, 2, "", "field brokerz not found"},
		{"no config", nil, nil, 2, "", "no config: give --config FILE"},
		{"bad flag value", nil, []string{"--config", good, "--batch-size", "0"}, 2, "", "--batch-size 0: want a positive number"},
		{"bad environment", map[string]string{"WHENTHEN_POLL_INTERVAL": "often"}, []string{"--config", good}, 2, "", "invalid environment variable WHENTHEN_POLL_INTERVAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, out, errb := runTestEnv(tc.vars)
			code := run(context.Background(), env, append([]string{"deliver"}, tc.args...))
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errb, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestDeliverConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("kafka: {brokers: [\"file:9092\"], group: from-file}\nbatch_size: 7\nmetrics: {listen: \"127.0.0.1:1\"}\n"), 0o644)
	env, _, errb := runTestEnv(map[string]string{"WHENTHEN_GROUP": "from-env", "WHENTHEN_BATCH_SIZE": "9"})
	cfg, _, _, code, ok := loadDeliverConfig(env, []string{"--config", path, "--batch-size", "11"})
	if !ok {
		t.Fatalf("exit %d: %s", code, errb)
	}
	o := cfg.options(env, path)
	if o.Kafka.Brokers[0] != "file:9092" || o.Kafka.Group != "from-env" || o.BatchSize != 11 || o.MetricsListen != "127.0.0.1:1" ||
		o.Kafka.ActionsTopic != "automations.actions" || o.OutcomesTopic != "automations.outcomes" || o.Redis.Prefix != "wt:" {
		t.Errorf("options %+v", o)
	}
}

// TestDeliverExampleConfig checks examples/deliver.yaml as docs/delivery.md
// tells operators to.
func TestDeliverExampleConfig(t *testing.T) {
	t.Chdir("../..")
	env, out, errb := runTestEnv(map[string]string{"OUTREACH_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"SMTP_PASSWORD": "pw", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X"})
	if code := run(context.Background(), env, []string{"deliver", "--config", "examples/deliver.yaml", "--check"}); code != 0 ||
		out.String() != "ok: examples/deliver.yaml: 3 destination(s)\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errb)
	}
}
