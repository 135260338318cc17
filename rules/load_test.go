package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
