package authoring

import (
	"bytes"
	"context"
	"encoding/xml"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTestRunStatuses runs the deliberately failing file and checks each
// test's status and the first line of each failure.
func TestTestRunStatuses(t *testing.T) {
	rep := RunTests(context.Background(), []string{"testdata/failing.yaml"}, TestOptions{})
	want := map[string]struct {
		status Status
		first  []string
	}{
		"passes":                                   {Passed, nil},
		"wrong automation id":                      {Failed, []string{"expected action not produced (line 24):", "unexpected action:"}},
		"wrong outcome and recipients":             {Failed, []string{"expected action not produced (line 38):", "unexpected action:", "expected run not produced (line 40):"}},
		"nothing happens":                          {Failed, []string{"expected action not produced (line 48):"}},
		"one action cannot match two expectations": {Failed, []string{"expected action not produced (line 57):"}},
		"a bad event":                              {Errored, []string{"event 1 (line 61) is not a valid event: invalid_field: record.amount: want double, got string", "event 2 (line 63) is not a valid event: missing_field: time is missing"}},
	}
	if len(rep.Files) != 1 || rep.Files[0].Err != nil || len(rep.Files[0].Tests) != len(want) {
		t.Fatalf("report: %+v", rep.Files)
	}
	for _, r := range rep.Files[0].Tests {
		w, ok := want[r.Name]
		if !ok {
			t.Fatalf("unexpected test %q", r.Name)
		}
		if r.Status != w.status || len(r.Failures) != len(w.first) {
			t.Errorf("%s: %s with %d failures, want %s with %d:\n%s", r.Name, r.Status, len(r.Failures), w.status, len(w.first), r.Text())
			continue
		}
		for i, f := range r.Failures {
			if line, _, _ := strings.Cut(f, "\n"); line != w.first[i] {
				t.Errorf("%s: failure %d starts %q, want %q", r.Name, i, line, w.first[i])
			}
		}
	}
	if p, f, e := rep.Counts(); p != 1 || f != 4 || e != 1 || rep.OK() {
		t.Fatalf("counts %d %d %d", p, f, e)
	}
}

// TestTestRunSelect: --run selects by name; the others are counted.
func TestTestRunSelect(t *testing.T) {
	rep := RunTests(context.Background(), []string{"testdata/failing.yaml"}, TestOptions{Run: regexp.MustCompile("^(passes|nothing)")})
	var names []string
	for _, r := range rep.Files[0].Tests {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "passes,nothing happens" || rep.NotSelected != 4 {
		t.Fatalf("ran %v, %d not selected", names, rep.NotSelected)
	}
}

// TestTestCoverage: the example tests run every example automation and
// see every clause both true and false; the counts of one condition are
// exact.
func TestTestCoverage(t *testing.T) {
	files, _ := filepath.Glob("../examples/tests/*.yaml")
	rep := RunTests(context.Background(), files, TestOptions{})
	if !rep.OK() {
		var b bytes.Buffer
		rep.WriteText(&b, false)
		t.Fatalf("example tests fail:\n%s", b.String())
	}
	if len(rep.Coverage) != 1 {
		t.Fatalf("%d rule sets, want 1 (the files share ../automations)", len(rep.Coverage))
	}
	c := rep.Coverage[0]
	if ran, total := c.Exercised(); ran != total || total != 14 {
		t.Errorf("exercised %d/%d, want 14/14", ran, total)
	}
	if both, total := c.ClausesCovered(); both != total || total != 22 {
		t.Errorf("clauses %d/%d, want 22/22", both, total)
	}
	cw := c.byID["closed-won-brief"]
	// Each clause is evaluated on each of the 18 opportunity creates and
	// updates of opportunities.yaml: 5 are Closed Won, 6 have an amount
	// over 200000. It ran three times: twice completed, once in cooldown.
	got := []int{cw.Runs, cw.Clauses[0].True, cw.Clauses[0].False, cw.Clauses[1].True, cw.Clauses[1].False}
	want := []int{3, 5, 13, 6, 12}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("closed-won-brief runs, stage true/false, amount true/false = %v, want %v", got, want)
		}
	}
}

// TestTestJUnit: the XML parses back with the counts and texts.
func TestTestJUnit(t *testing.T) {
	rep := RunTests(context.Background(), []string{"testdata/failing.yaml", "testdata/missing.yaml"}, TestOptions{})
	var b bytes.Buffer
	if err := rep.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Tests != 7 || got.Failures != 4 || got.Errors != 2 || len(got.Suites) != 2 {
		t.Fatalf("totals %d/%d/%d in %d suites", got.Tests, got.Failures, got.Errors, len(got.Suites))
	}
	c := got.Suites[0].Cases[1]
	if c.Name != "wrong automation id" || c.Failure == nil || c.Failure.Message != "expected action not produced (line 24) (and 1 more)" ||
		!strings.Contains(c.Failure.Text, `automation_id: want "big-win-brief", got "closed-won-brief"`) {
		t.Fatalf("case %+v", c)
	}
	if e := got.Suites[1].Cases[0].Error; e == nil || !strings.Contains(e.Text, "no such file") {
		t.Fatalf("missing file: %+v", got.Suites[1])
	}
}
