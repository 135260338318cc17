package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/crm"
)

var update = flag.Bool("update", false, "rewrite the expected error files of testdata/*.bad.yaml")

func testCompiler(t testing.TB) *Compiler {
	t.Helper()
	s, err := crm.LoadSchema("testdata/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCompiler(CompilerOptions{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGoodFiles loads every testdata/*.good.yaml: each must load without error.
func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no good files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := compileFiles(t, f); err != nil {
				t.Fatalf("want no error, got:\n%v", err)
			}
		})
	}
}

// TestBadFiles loads every testdata/*.bad.yaml and compares the errors,
// one per line, with the file's .err twin.
func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no bad files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := compileFiles(t, f)
			if err == nil {
				t.Fatal("want errors, got none")
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
				t.Fatalf("read expected errors: %v (run go test ./rules -run TestBadFiles -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

// compileFiles reads and compiles the automation files at paths.
func compileFiles(t *testing.T, paths ...string) (*Set, error) {
	t.Helper()
	srcs, err := ReadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return testCompiler(t).Compile(srcs)
}

// TestNewTriggersParsed: built-in schedules, catch_up and call triggers
// are read as written.
func TestNewTriggersParsed(t *testing.T) {
	set, err := compileFiles(t, "testdata/all-triggers.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	get := func(id string) *Automation {
		a, ok := set.Automation(id)
		if !ok {
			t.Fatalf("no automation %s", id)
		}
		return a
	}
	if c := get("weekly-brief").Trigger.Cron; c == nil || c.Spec != "0 9 * * MON" || c.Location.String() != "America/New_York" || get("weekly-brief").Brief.Kind != "opportunity" {
		t.Errorf("weekly-brief: %+v", get("weekly-brief").Trigger)
	}
	if s := get("schedule-flow").Trigger; s.Cron != nil || s.Schedule != "weekly" {
		t.Errorf("schedule-flow: %+v", s)
	}
	for id, want := range map[string]time.Duration{"renewal-catch-up": 72 * time.Hour, "renewal-no-catch-up": 0, "date-flow": DefaultCatchUp} {
		if got := get(id).Trigger.Date.CatchUp; got != want {
			t.Errorf("%s: catch_up %v, want %v", id, got, want)
		}
	}
	if a := get("call-flow"); a.Trigger.Kind != TriggerCall || a.If.Related()&RelatedAccount == 0 {
		t.Errorf("call-flow: %+v", a.Trigger)
	}
}
