package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { testenv.Main(m) }

// runCmd runs the binary's entry point in-process.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestEvalScenarios runs each engine/testdata/scenarios/NAME through
// `whenthen eval` and compares stdout with NAME/expected.jsonl.
func TestEvalScenarios(t *testing.T) {
	dirs, _ := filepath.Glob("../../engine/testdata/scenarios/*")
	if len(dirs) == 0 {
		t.Fatal("no scenarios")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			args := []string{"eval", "--rules", dir, "--events", filepath.Join(dir, "events.jsonl")}
			if extra, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
				args = append(args, strings.Fields(string(extra))...)
			}
			code, out, errs := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, filepath.Join(dir, "expected.jsonl"), out)
		})
	}
}

// TestEvalWithRedis: the same scenario gives the same output with state
// in a real Redis as in memory.
func TestEvalWithRedis(t *testing.T) {
	dir := "../../engine/testdata/scenarios/flows"
	_, prefix := testenv.Redis(t)
	code, out, errs := runCmd(t, "eval", "--rules", dir, "--events", filepath.Join(dir, "events.jsonl"),
		"--redis-url", testenv.RedisURL(t), "--redis-prefix", prefix)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "expected.jsonl"))
	if out != string(want) {
		t.Fatalf("with Redis:\n%s\nin memory:\n%s", out, want)
	}
}

func TestEvalUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"eval"}, 2, "usage: whenthen eval"},
		{[]string{"eval", "--rules", "x", "--events", "y", "--until", "tomorrow"}, 2, `--until: want an RFC 3339 time, got "tomorrow"`},
		{[]string{"eval", "--rules", "../../examples/automations", "--events", "/nonexistent.jsonl"}, 1, "undefined field 'onboarding_status'"},
		{[]string{"eval", "--schema", "../../examples/schema.yaml", "--rules", "../../examples/automations", "--events", "/nonexistent.jsonl"}, 1, "no such file"},
	} {
		code, _, errs := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errs, tt.code, tt.msg)
		}
	}
}

func TestCheck(t *testing.T) {
	code, out, _ := runCmd(t, "check", "--schema", "../../examples/schema.yaml", "../../examples/automations")
	if code != 0 || out != "ok: 3 files, 14 automations (record 8, date 2, tracker 1, schedule 2, call 1)\n" {
		t.Fatalf("exit %d, %q", code, out)
	}
	code, _, errs := runCmd(t, "check", "../../rules/testdata/who.bad.yaml")
	want, _ := os.ReadFile("../../rules/testdata/who.bad.err")
	if code != 1 || !strings.HasPrefix(errs, strings.ReplaceAll(string(want), "testdata/", "../../rules/testdata/")) || !strings.HasSuffix(errs, "6 errors\n") {
		t.Fatalf("exit %d:\n%s", code, errs)
	}
	code, out, _ = runCmd(t, "check", "--format", "json", "../../rules/testdata/duplicate-a.bad.yaml")
	if code != 1 || !strings.Contains(out, `"valid": false`) || !strings.Contains(out, `"line": 5`) || !strings.Contains(out, `"automation": "same"`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if code, _, _ := runCmd(t, "check"); code != 2 {
		t.Fatalf("no paths: exit %d, want 2", code)
	}
}

// TestCheckBadSchema: every error of a schema file is reported on its
// own, with its position, in text and in JSON.
func TestCheckBadSchema(t *testing.T) {
	schema := filepath.Join(t.TempDir(), "schema.yaml")
	if err := os.WriteFile(schema, []byte("objects:\n  account:\n    fields:\n      Tier: string\n      score: float\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, "check", "--schema", schema, "../../examples/automations")
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	if code != 1 || len(lines) != 3 || !strings.HasPrefix(lines[0], schema+":4:7: ") || !strings.HasPrefix(lines[1], schema+":5:14: ") || lines[2] != "2 errors" {
		t.Fatalf("exit %d:\n%s", code, errs)
	}
	code, out, _ := runCmd(t, "check", "--format", "json", "--schema", schema, "../../examples/automations")
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Valid || len(rep.Errors) != 2 ||
		rep.Errors[1].Line != 5 || rep.Errors[1].Col != 14 || !strings.Contains(rep.Errors[1].Message, "float") {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
}
