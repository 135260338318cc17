package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// it either loads or returns errors that carry the file name.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	ex, _ := filepath.Glob("../examples/automations/*.yaml")
	for _, p := range append(files, ex...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("automations:\n  - id: a\n    when: {record: lead}\n    if: record.score > 1 &&\n    then: {flow: {id: f}}\n"))
	c, err := NewCompiler(CompilerOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := c.Compile([]Source{{Name: "fuzz.yaml", Data: data}})
		if err != nil {
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("want a non-empty ErrorList, got %T %v", err, err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("error without file or message: %#v", e)
				}
			}
			return
		}
		for _, a := range set.Automations {
			if a.ID == "" || a.Trigger.Kind == 0 || (a.Brief == nil) == (a.Flow == nil) {
				t.Fatalf("loaded an incomplete automation: %#v", a)
			}
		}
	})
}
