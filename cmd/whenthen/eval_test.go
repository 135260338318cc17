package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvalFailOnDeadLetter: with --fail-on-dead-letter, eval prints the
// same output and exits 1 when a line was dead-lettered; without it, or
// when nothing was, it exits 0.
func TestEvalFailOnDeadLetter(t *testing.T) {
	for _, tt := range []struct {
		scenario string
		flag     bool
		code     int
		stderr   string
	}{
		{"errors", false, 0, ""},
		{"errors", true, 1, "whenthen eval: 4 lines dead-lettered (--fail-on-dead-letter)\n"},
		{"deals", true, 0, ""},
	} {
		dir := filepath.Join("../../engine/testdata/scenarios", tt.scenario)
		args := []string{"eval", "--rules", dir, "--events", filepath.Join(dir, "events.jsonl")}
		if tt.flag {
			args = append(args, "--fail-on-dead-letter")
		}
		code, out, errs := runCmd(t, args...)
		want, _ := os.ReadFile(filepath.Join(dir, "expected.jsonl"))
		// stderr also holds the engine's warnings of the errors scenario.
		gotMsg := strings.Contains(errs, "dead-lettered")
		if code != tt.code || gotMsg != (tt.stderr != "") || !strings.HasSuffix(errs, tt.stderr) || out != string(want) {
			t.Errorf("%s %v: exit %d, stderr %q; want exit %d, stderr %q; output same as expected.jsonl: %v",
				tt.scenario, tt.flag, code, errs, tt.code, tt.stderr, out == string(want))
		}
		if tt.flag && tt.code == 1 && strings.Count(out, `{"dead_letter":`) != 4 {
			t.Errorf("want the 4 dead letters printed:\n%s", out)
		}
	}
}
