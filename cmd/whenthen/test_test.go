package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Test data of the authoring commands lives with package authoring.
const authoringTestdata = "../../authoring/testdata/"

// TestTestFailureText: the exact report of a file whose tests fail on
// purpose, one way each: diffs, what happened, an invalid event, the
// totals and the coverage.
func TestTestFailureText(t *testing.T) {
	code, out, errs := runCmd(t, "test", authoringTestdata+"failing.yaml")
	if code != 1 || errs != "" {
		t.Fatalf("exit %d, stderr %q; want 1 and nothing", code, errs)
	}
	golden(t, authoringTestdata+"failing.out", out)
}

// TestTestRun: --run selects tests by name; passing ones are listed with -v.
func TestTestRun(t *testing.T) {
	code, out, _ := runCmd(t, "test", "-v", "--run", "^passes$", authoringTestdata+"failing.yaml")
	first, _, _ := strings.Cut(out, "\n")
	if code != 0 || first != "ok    passes (../../authoring/testdata/failing.yaml:7)" || !strings.Contains(out, "\n1 passed, 0 failed (5 not selected by --run)\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out, _ = runCmd(t, "test", "--run", "nothing|wrong", authoringTestdata+"failing.yaml")
	if code != 1 || !strings.Contains(out, "\n0 passed, 3 failed (3 not selected by --run)\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if code, _, errs := runCmd(t, "test", "--run", "(", authoringTestdata+"failing.yaml"); code != 2 || !strings.Contains(errs, "--run: error parsing regexp") {
		t.Fatalf("bad --run: exit %d, %s", code, errs)
	}
}

// TestTestJUnit: --junit writes XML that parses back with the results.
func TestTestJUnit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	code, _, _ := runCmd(t, "test", "--junit", path, authoringTestdata+"failing.yaml", "../../examples/tests/leads.yaml")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Tests int    `xml:"tests,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("invalid XML: %v\n%s", err, data)
	}
	if doc.Tests != 9 || doc.Failures != 4 || doc.Errors != 1 || len(doc.Suites) != 2 ||
		doc.Suites[0].Name != authoringTestdata+"failing.yaml" || doc.Suites[1].Tests != 3 {
		t.Fatalf("totals %d/%d/%d, suites %+v", doc.Tests, doc.Failures, doc.Errors, doc.Suites)
	}
	cases := doc.Suites[0].Cases
	if cases[0].Name != "passes" || cases[0].Failure != nil || cases[0].Error != nil {
		t.Fatalf("passing case %+v", cases[0])
	}
	if f := cases[3].Failure; cases[3].Name != "nothing happens" || f == nil || f.Message != "expected action not produced (line 48)" ||
		!strings.Contains(f.Text, "no action was produced") {
		t.Fatalf("failing case %+v", cases[3])
	}
	if e := cases[5].Error; e == nil || e.Message != "event 1 (line 61) is not a valid event: invalid_field: record.amount: want double, got string (and 1 more)" {
		t.Fatalf("errored case %+v", cases[5])
	}
}

// TestTestCoverageFigures: the coverage line counts automations that ran
// and clauses seen both ways; --min-coverage turns a shortfall into a
// failure.
func TestTestCoverageFigures(t *testing.T) {
	code, out, _ := runCmd(t, "test", "--min-coverage", "50", "../../examples/tests/leads.yaml")
	want := "3 passed, 0 failed\n" +
		"coverage of ../../examples/automations: 3/14 automations exercised (21.4%); 4/22 condition clauses seen both true and false (18.2%)\n"
	if code != 1 || !strings.HasPrefix(out, want) ||
		!strings.HasSuffix(out, "coverage of [../../examples/automations]: 3/14 automations exercised is below --min-coverage 50%\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "  stale-deal-nudge: never ran; no event or timer of its trigger evaluated its condition\n") {
		t.Fatalf("no detail for stale-deal-nudge:\n%s", out)
	}
}

func TestTestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"test"}, 2, "usage: whenthen test"},
		{[]string{"test", "/nonexistent.yaml"}, 1, "no such file"},
	} {
		code, _, errs := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errs, tt.code, tt.msg)
		}
	}
	// A file that does not load is an error of its own, reported with
	// every problem; the other files still run.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rules: [nowhere]\ntests:\n  - name: x\n    events: [{id: e1}]\n    expect: {actions: [{automation: x}]}\n"), 0o644)
	code, out, _ := runCmd(t, "test", bad, "../../examples/tests/leads.yaml")
	if code != 1 || !strings.Contains(out, "ERROR "+bad+":\n    "+bad+`:5:25: test "x": expected action: unknown field "automation"`) ||
		!strings.Contains(out, "3 passed, 0 failed, 1 error\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	os.WriteFile(bad, []byte("rules: [nowhere]\ntests:\n  - name: x\n    events: [{id: e1}]\n"), 0o644)
	code, out, _ = runCmd(t, "test", bad)
	if code != 1 || !strings.Contains(out, "ERROR "+bad+":\n    rules: stat "+filepath.Join(dir, "nowhere")+": no such file or directory\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestExamples runs every example test file, as `make test` does through
// `go test`: they must pass and run every example automation.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/tests/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example tests")
	}
	code, out, errs := runCmd(t, append([]string{"test", "--min-coverage", "100"}, files...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, ": 14/14 automations exercised (100.0%); 22/22 condition clauses seen both true and false (100.0%)\n") {
		t.Fatalf("coverage:\n%s", out)
	}
}
