package main

import (
	"encoding/json"
	"testing"
)

// TestCheckDisabled: check counts the disabled automations, in text and
// in JSON, and says nothing of them when there are none.
func TestCheckDisabled(t *testing.T) {
	args := []string{"--schema", "../../rules/testdata/schema.yaml", "../../rules/testdata/all-triggers.good.yaml"}
	code, out, errs := runCmd(t, append([]string{"check"}, args...)...)
	if want := "ok: 1 file, 15 automations (record 6, date 3, tracker 2, schedule 2, call 2), 1 disabled\n"; code != 0 || out != want {
		t.Fatalf("exit %d, %q (stderr %q); want %q", code, out, errs, want)
	}
	code, out, _ = runCmd(t, append([]string{"check", "--format", "json"}, args...)...)
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Summary == nil ||
		rep.Summary.Disabled != 1 || rep.Summary.Enabled != 14 || rep.Summary.Automations != 15 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	code, out, _ = runCmd(t, "check", "--format", "json", "--schema", "../../examples/schema.yaml", "../../examples/automations")
	rep = checkReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Summary.Disabled != 0 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
}
