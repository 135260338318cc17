package yamlfile

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

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
		{name: "syntax error with a line", data: "a: 1\nb: c: d\n", wantErr: "f.yaml:2:1: invalid YAML: mapping values are not allowed in this context"},
		{name: "tab indentation", data: "a:\n\tb: 1\n", wantErr: "f.yaml:2:1: invalid YAML: found character that cannot start any token"},
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
