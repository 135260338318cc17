// Package yamlfile reads whenthen's YAML files (automations, schemas,
// scenario tests) into node trees that keep positions, and reports what is
// wrong with them as FILE:LINE:COL errors.
//
// The file formats themselves live with their owners (rules, crm,
// authoring); this package only does what they share: parsing, the
// document root, and the positioned error and error list they return.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

// Parse parses a file of one YAML document and returns its root node:
// nil for an empty document. A syntax error is an *Error at the mistake
// and saying what it is (an unclosed bracket or quote, a bad indentation,
// a tab, a value holding ": ", a key without its ": ", ...: locate.go),
// or, for a mistake locate does not know, at the line the YAML library
// names. A second document (after ---) is an error too: the library would
// skip it silently.
func Parse(name string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(name, data, err, false)
	}
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || !isEmpty(root(&more)) {
			return nil, syntaxError(name, data, err, true)
		}
	}
	return root(&doc), nil
}

// syntaxError locates the syntax error err of the library in data, in
// its first document or (extra) after it.
func syntaxError(name string, data []byte, err error, extra bool) *Error {
	if f := locate(data, extra); f != nil {
		return &Error{File: name, Line: f.line, Col: f.col, Msg: "invalid YAML: " + f.msg}
	}
	if err == nil {
		return &Error{File: name, Msg: "invalid YAML: more than one document (---): a file holds one document"}
	}
	line, msg := syntaxLine(err)
	e := &Error{File: name, Line: line, Msg: "invalid YAML: " + msg}
	if line > 0 {
		e.Col = 1
	}
	return e
}

// isEmpty tells whether a document's root is nothing: no node, or a null
// scalar with no text (a document of "---" alone).
func isEmpty(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Value == "" && n.Anchor == ""
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxLine extracts the line of a YAML syntax error, if it names one,
// and the message without the library's prefix. The library counts the
// lines of its parser's errors ("did not find expected ...") from 0, and
// those of its scanner's from 1; a message without a line is about line 1.
func syntaxLine(err error) (int, string) {
	s := err.Error()
	m := lineRE.FindStringSubmatch(s)
	if m == nil {
		return 1, strings.TrimPrefix(s, "yaml: ")
	}
	var n int
	fmt.Sscan(m[1], &n)
	msg := s[len(m[0]):]
	if strings.HasPrefix(msg, "did not find expected") {
		n++
	}
	return n, msg
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
