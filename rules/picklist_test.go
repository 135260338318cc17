package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/crm"
)

// TestPicklistFiles loads testdata/picklist/*.yaml with the schema there,
// whose fields list their values: the good files load, and the errors of
// each bad file are those of its .err twin (-update rewrites them).
func TestPicklistFiles(t *testing.T) {
	s, err := crm.LoadSchema("testdata/picklist/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/picklist/*.*.yaml")
	if len(files) < 2 {
		t.Fatal("no files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := NewCompiler(CompilerOptions{Schema: s})
			if err != nil {
				t.Fatal(err)
			}
			srcs, err := ReadFiles(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Compile(srcs)
			if strings.HasSuffix(f, ".good.yaml") {
				if err != nil {
					t.Fatalf("want no error, got:\n%v", err)
				}
				return
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("want an ErrorList, got %T: %v", err, err)
			}
			got := list.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read expected errors: %v (run go test ./rules -run TestPicklistFiles -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

// TestPicklistShapes: a condition built from the template of a valid one
// of the same shape is still checked, at its own constant; and a rule set
// compiled with the standard schema accepts any value.
func TestPicklistShapes(t *testing.T) {
	s, err := crm.LoadSchema("testdata/picklist/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCompiler(CompilerOptions{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("automations:\n")
	for i, v := range []string{"Negotiation", "Negotiatio", "Closed Won", "Closed-Won"} {
		b.WriteString("  - id: a" + string(rune('0'+i)) + "\n    when: {record: opportunity}\n    if: record.stage == \"" + v + "\" && record.seats > 3\n    then: {brief: {}}\n")
	}
	src := []Source{{Name: "s.yaml", Data: []byte(b.String())}}
	_, err = c.Compile(src)
	want := `s.yaml:8:25: automation a1: if: "Negotiatio" is not a value of opportunity.stage (Prospecting, Negotiation, Closed Won, Closed Lost); did you mean "Negotiation"?` + "\n" +
		`s.yaml:16:25: automation a3: if: "Closed-Won" is not a value of opportunity.stage (Prospecting, Negotiation, Closed Won, Closed Lost); did you mean "Closed Won"?`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	if c.shapes.hits.Load() == 0 {
		t.Fatal("no condition was built from a template: the test does not test it")
	}
	std, err := NewCompiler(CompilerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := std.Compile(src); err == nil || strings.Contains(err.Error(), "not a value") {
		t.Fatalf("the standard schema: %v", err) // seats is not a standard field: that error only
	}
}
