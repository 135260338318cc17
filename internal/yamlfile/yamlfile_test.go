package yamlfile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/broken/*.err")

func TestParse(t *testing.T) {
	tests := []struct {
		name, data string
		wantKind   yaml.Kind // of the root; 0: nil root
		wantErr    string
	}{
		{name: "empty", data: ""},
		{name: "comment only", data: "# nothing\n"},
		{name: "mapping", data: "a: 1\n", wantKind: yaml.MappingNode},
		{name: "list", data: "- 1\n", wantKind: yaml.SequenceNode},
		{name: "a document marker", data: "---\na: 1\n", wantKind: yaml.MappingNode},
		{name: "an empty second document", data: "a: 1\n---\n# nothing\n", wantKind: yaml.MappingNode},
		{name: "a value holding ': '", data: "a: 1\nb: c: d\n", wantErr: `f.yaml:2:5: invalid YAML: the value of "b" holds ": ": quote the value (or, for a mapping, put its keys on the next lines, indented)`},
		{name: "tab indentation", data: "a:\n\tb: 1\n", wantErr: "f.yaml:2:1: invalid YAML: a tab indents this line: YAML indents with spaces only"},
		{name: "a second document", data: "a: 1\n---\nb: 2\n", wantErr: "f.yaml:2:1: invalid YAML: a second YAML document starts here: a file holds one document"},
		{name: "less indented than the first line", data: "  a: 1\nb: 2\n", wantErr: `f.yaml:2:1: invalid YAML: bad indentation of "b" (0 spaces): less than the file's first line (2 spaces), which ends the document here`},
		{name: "CRLF lines", data: "a: 1\r\nb: [1\r\n", wantErr: "f.yaml:2:4: invalid YAML: this '[' is never closed (expected ']')"},
		{name: "columns count characters", data: "é: \"ü\" x\n", wantErr: `f.yaml:1:8: invalid YAML: text after the closing quote: a value that starts with a quote ends with it; quote the whole value (write '"ü" x')`},
		// Not modelled: the library's message, and line.
		{name: "a directive", data: "%FOO\na: 1\n", wantErr: "f.yaml:1:1: invalid YAML: found unknown directive name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := Parse("f.yaml", []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (root == nil) != (tt.wantKind == 0) || root != nil && root.Kind != tt.wantKind {
				t.Fatalf("root = %+v, want kind %v", root, tt.wantKind)
			}
		})
	}
}

// TestBrokenFiles parses each testdata/broken/*.yaml, a mistake authors
// make, and compares its error, FILE:LINE:COL: message, with the file's
// .err twin (-update rewrites them). Each must be located by locate, not
// left to the library's line.
func TestBrokenFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	if len(files) < 20 {
		t.Fatalf("%d files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, perr := Parse(f, data)
			if perr == nil {
				t.Fatal("no error")
			}
			if locate(data, strings.HasPrefix(filepath.Base(f), "two-")) == nil {
				t.Error("not located: the library's line")
			}
			got := perr.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/yamlfile -run TestBrokenFiles -update)", err)
			}
			if got != string(want) {
				t.Errorf("got  %swant %s", got, want)
			}
		})
	}
}

func TestSyntaxLine(t *testing.T) {
	for _, tt := range []struct {
		err  string
		line int
		msg  string
	}{
		{"yaml: line 3: found unexpected end of stream", 3, "found unexpected end of stream"},
		{"yaml: line 2: did not find expected key", 3, "did not find expected key"}, // parser lines count from 0
		{"yaml: found unknown directive name", 1, "found unknown directive name"},
	} {
		line, msg := syntaxLine(errString(tt.err))
		if line != tt.line || msg != tt.msg {
			t.Errorf("%q: %d %q, want %d %q", tt.err, line, msg, tt.line, tt.msg)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestErrorList(t *testing.T) {
	l := ErrorList{
		{File: "b.yaml", Line: 1, Col: 1, Msg: "b"},
		{File: "a.yaml", Line: 2, Col: 5, Msg: "second"},
		{File: "a.yaml", Msg: "no line"},
		{File: "a.yaml", Line: 2, Col: 1, Msg: "first"},
	}
	l.Sort()
	want := "a.yaml: no line\na.yaml:2:1: first\na.yaml:2:5: second\nb.yaml:1:1: b"
	if got := l.Error(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
