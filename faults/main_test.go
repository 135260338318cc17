//go:build linux

package faults

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvLong turns on the long form, like -faults.long.
const EnvLong = "WHENTHEN_FAULTS_LONG"

var (
	longFlag   = flag.Bool("faults.long", false, "run the long form of the fault suite (also "+EnvLong+"=1) and write -faults.results")
	resultsDir = flag.String("faults.results", "results", "directory the long form writes results.json and results.md to")
)

// long reports whether the long form runs.
func long() bool {
	return *longFlag || os.Getenv(EnvLong) == "1" || os.Getenv(EnvLong) == "true"
}

// pick returns the short or the long value.
func pick[T any](short, lng T) T {
	if long() {
		return lng
	}
	return short
}

// TestMain runs the suite; the long form then writes its figures. The
// tests start their own redis-servers (testenv.StartRedis), never the
// shared one, so testenv.Main is not needed.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if long() {
		if err := results.write(*resultsDir); err != nil {
			fmt.Fprintln(os.Stderr, "faults: writing results:", err)
			code = 1
		}
	}
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// figures is one case's measured figures.
type figures struct {
	Case    string         `json:"case"`
	Mode    string         `json:"mode"`
	Passed  bool           `json:"passed"`
	Seconds float64        `json:"seconds"`
	Values  map[string]any `json:"values"`
	Summary string         `json:"summary"`
}

type resultSet struct {
	mu   sync.Mutex
	list []figures
}

var results resultSet

// report logs one case's summary line and keeps its figures for the
// results files; kv is key, value, key, value, ...
func report(t *testing.T, start time.Time, kv ...any) {
	t.Helper()
	vals := map[string]any{}
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		k := fmt.Sprint(kv[i])
		vals[k] = kv[i+1]
		parts = append(parts, fmt.Sprintf("%s=%v", k, kv[i+1]))
	}
	d := time.Since(start)
	summary := fmt.Sprintf("%s [%s, %.1fs]: %s", t.Name(), pick("short", "long"), d.Seconds(), strings.Join(parts, " "))
	t.Log(summary)
	t.Cleanup(func() {
		results.mu.Lock()
		defer results.mu.Unlock()
		results.list = append(results.list, figures{Case: t.Name(), Mode: pick("short", "long"), Passed: !t.Failed(),
			Seconds: d.Seconds(), Values: vals, Summary: summary})
	})
}

// write writes results.json and results.md into dir.
func (r *resultSet) write(dir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) == 0 {
		return nil
	}
	// Merge with the file's earlier results: a run of some cases (-run)
	// replaces theirs and keeps the others'.
	if b, err := os.ReadFile(filepath.Join(dir, "results.json")); err == nil {
		var old []figures
		if json.Unmarshal(b, &old) == nil {
			ran := map[string]bool{}
			for _, f := range r.list {
				ran[f.Case] = true
			}
			for _, f := range old {
				if !ran[f.Case] {
					r.list = append(r.list, f)
				}
			}
		}
	}
	sort.SliceStable(r.list, func(i, j int) bool { return r.list[i].Case < r.list[j].Case })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r.list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Fault suite results (%s)\n\n", time.Now().UTC().Format(time.RFC3339))
	md.WriteString("| case | mode | passed | seconds | figures |\n|---|---|---|---|---|\n")
	for _, f := range r.list {
		keys := make([]string, 0, len(f.Values))
		for k := range f.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var vs []string
		for _, k := range keys {
			vs = append(vs, fmt.Sprintf("%s=%v", k, f.Values[k]))
		}
		fmt.Fprintf(&md, "| %s | %s | %v | %.1f | %s |\n", f.Case, f.Mode, f.Passed, f.Seconds, strings.Join(vs, " "))
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644)
}
