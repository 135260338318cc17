package delivery_test

import (
	"errors"
	"os"
	"testing"

	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/internal/yamlfile"
)

// FuzzParseConfig feeds ParseConfig arbitrary files: it must never panic,
// and a refused file is an ErrorList whose every entry names the file.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"testdata/good.yaml", "testdata/bad.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("destinations: [{name: a, workspaces: ['*'], webhook: {url: 'https://x', secret_env: S}, retry: {initial: 1h, max: 1s}}]"))
	f.Add([]byte("fields: [{workspaces: [a], allow: {opportunity: [standard]}}]\nbrief: {ai: {base_url: 'http://127.0.0.1:1', model: m}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := delivery.ParseConfig("f.yaml", data, "kafka")
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			for _, d := range c.Destinations {
				if d.Name == "" || len(d.Workspaces) == 0 || d.Concurrency <= 0 || d.Timeout <= 0 || len(d.Actions) == 0 {
					t.Fatalf("accepted an incomplete destination %+v", d)
				}
			}
			return
		}
		var list yamlfile.ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error %v is not an ErrorList", err)
		}
		for _, e := range list {
			if e.File != "f.yaml" {
				t.Fatalf("error %v names no file", e)
			}
		}
	})
}
