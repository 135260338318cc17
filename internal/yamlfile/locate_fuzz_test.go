package yamlfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzLocate: locate never blames a file the YAML library accepts (nor,
// looking after the first document, a file of one document), and never
// panics. Seeds: every YAML file of the repository, and the broken
// files of testdata.
func FuzzLocate(f *testing.F) {
	for _, s := range repoYAML(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(data), &doc) == nil {
			if got := locate([]byte(data), false); got != nil {
				t.Fatalf("valid YAML blamed at %d:%d: %s\n%q", got.line, got.col, got.msg, data)
			}
		}
		// A file of one document: nothing after it to blame.
		dec := yaml.NewDecoder(strings.NewReader(data))
		var first, second yaml.Node
		if dec.Decode(&first) == nil && errors.Is(dec.Decode(&second), io.EOF) {
			if got := locate([]byte(data), true); got != nil {
				t.Fatalf("valid YAML blamed after its document at %d:%d: %s\n%q", got.line, got.col, got.msg, data)
			}
		}
	})
}

// TestLocateValid: locate finds nothing in the valid YAML files of the
// repository (the fuzz seeds, run without -fuzz too).
func TestLocateValid(t *testing.T) {
	n := 0
	for _, s := range repoYAML(t) {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(s), &doc) != nil {
			continue
		}
		n++
		if f := locate([]byte(s), false); f != nil {
			t.Errorf("valid YAML blamed at %d:%d: %s\n%s", f.line, f.col, f.msg, s)
		}
	}
	if n < 30 {
		t.Fatalf("only %d valid files", n)
	}
}

// repoYAML reads the YAML files of the repository.
func repoYAML(tb testing.TB) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../.." {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out = append(out, string(b))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
