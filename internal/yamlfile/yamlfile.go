// Package yamlfile reads whenthen's YAML files (automations, schemas,
// scenario tests) into node trees that keep positions, and reports what is
// wrong with them as FILE:LINE:COL errors.
//
// The file formats themselves live with their owners (rules, crm,
// authoring); this package only does what they share: parsing, the
// document root, and the positioned error and error list they return.
package yamlfile

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a file, at a position.
type Error struct {
	File      string
	Line, Col int // 1-based; 0 when unknown
	Msg       string
}

// Error formats as FILE:LINE:COL: message (FILE: message without a line).
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ErrorList is every problem found in one or more files.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Sort orders the errors by file, line and column, keeping the order of
// errors at the same position.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Parse parses one YAML document and returns its root node: nil for an
// empty document. A syntax error is an *Error at the line the YAML
// library names (column 1), or at the file when it names none.
func Parse(name string, data []byte) (*yaml.Node, *Error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := syntaxLine(err)
		e := &Error{File: name, Line: line, Msg: "invalid YAML: " + msg}
		if line > 0 {
			e.Col = 1
		}
		return nil, e
	}
	return root(&doc), nil
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxLine extracts the line of a YAML syntax error, if it names one,
// and the message without the library's prefix.
func syntaxLine(err error) (int, string) {
	s := err.Error()
	if m := lineRE.FindStringSubmatch(s); m != nil {
		var n int
		fmt.Sscan(m[1], &n)
		return n, s[len(m[0]):]
	}
	return 0, strings.TrimPrefix(s, "yaml: ")
}

func root(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		return doc.Content[0]
	}
	if doc.Kind == 0 {
		return nil
	}
	return doc
}
