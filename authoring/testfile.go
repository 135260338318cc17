package authoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/internal/yamlfile"
)

// TestFile is a parsed scenario test file:
//
//	rules: [../automations]   # paths relative to the file
//	schema: ../schema.yaml    # optional
//	workspace: acme           # optional: the workspace of events that name none
//	decoder: {config: FILE}   # optional: Debezium change events (decoder.go)
//	tests:
//	  - name: ...
//	    events: [...]         # event envelopes (docs/events.md), in order
//	    until: TIME           # optional: fire the timers due up to TIME at the end
//	    expect: {actions: [...], runs: [...], only_listed_actions: true, only_listed_runs: false}
type TestFile struct {
	Path string
	// Rules are the automation paths, resolved against the file's directory.
	Rules []string
	// Schema is the schema path, resolved; "" for the standard schema.
	Schema    string
	Workspace string
	// Decoder reads the events; nil for envelopes (decoder.go).
	Decoder *DecoderConfig
	Tests   []*Test
}

// Test is one scenario.
type Test struct {
	Name string
	Line int
	// Events are the events as JSON envelopes, in order.
	Events []EventSource
	// Until, when set, fires the timers due up to it after the last event.
	Until  time.Time
	Expect Expect
}

// EventSource is one event of a test, converted from YAML to JSON.
type EventSource struct {
	Line int
	JSON []byte
}

// Expect is what a test expects of the actions and runs its events produce.
type Expect struct {
	Actions []*Expected
	Runs    []*Expected
	// OnlyListedActions fails the test on any action no expectation
	// matched (default true); OnlyListedRuns likewise for runs (default false).
	OnlyListedActions bool
	OnlyListedRuns    bool
}

// Expected is one expected action or run: a subset of its JSON fields.
type Expected struct {
	Line int
	// Fields are the expected fields, nested as in the record's JSON
	// (a dotted key such as flow.person_id is nested when parsed).
	Fields map[string]any
	// Text is the expectation as written, as compact JSON.
	Text string
}

// Error is a problem in a test file, at a position.
type Error struct {
	File      string
	Line, Col int
	Test      string // "" outside a test
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Test != "" {
		fmt.Fprintf(&b, "test %q: ", e.Test)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem of a test file, in position order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// The fields of action and run records (actions.Action, actions.Run JSON)
// an expectation may name; nested objects list their own.
var (
	actionFields = map[string]map[string]bool{
		"action_id": nil, "workspace": nil, "automation_id": nil, "type": nil,
		"brief": {"kind": true, "recipients": true}, "flow": {"id": true, "person_id": true},
		"object": nil, "record_id": nil, "event_id": nil, "event_time": nil, "fired_at": nil,
	}
	runFields = map[string]map[string]bool{
		"run_id": nil, "workspace": nil, "automation_id": nil, "trigger": nil, "event_id": nil,
		"object": nil, "record_id": nil, "ran_at": nil, "outcome": nil, "reason": nil,
		"error": nil, "late_ms": nil, "action_ids": nil,
	}
)

// LoadTestFile reads and parses a test file. The error, if any, is an
// ErrorList with every problem found, or an I/O error.
func LoadTestFile(path string) (*TestFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseTestFile(path, data)
}

// ParseTestFile parses a test file's content; relative paths in it are
// resolved against the directory of path.
func ParseTestFile(path string, data []byte) (*TestFile, error) {
	p := &testParser{file: path}
	root, perr := yamlfile.Parse(path, data)
	if perr != nil {
		return nil, ErrorList{{File: perr.File, Line: perr.Line, Col: perr.Col, Msg: perr.Msg}}
	}
	tf := &TestFile{Path: path}
	if root == nil {
		return nil, ErrorList{{File: path, Msg: "the file is empty: want a mapping with rules and tests"}}
	}
	if root.Kind != yaml.MappingNode {
		return nil, ErrorList{{File: path, Line: root.Line, Col: root.Column, Msg: "want a mapping with rules and tests"}}
	}
	dir := filepath.Dir(path)
	var testsNode *yaml.Node
	p.mapping(root, "", "the file", func(k string, key, v *yaml.Node) {
		switch k {
		case "rules":
			for _, s := range p.strings(v, "", "rules") {
				tf.Rules = append(tf.Rules, resolve(dir, s))
			}
		case "schema":
			if s, ok := p.str(v, "", "schema"); ok && s != "" {
				tf.Schema = resolve(dir, s)
			}
		case "workspace":
			tf.Workspace, _ = p.str(v, "", "workspace")
		case "tests":
			testsNode = v
		case "decoder":
			tf.Decoder = p.decoder(v, dir)
		default:
			p.errAt(key, "", "unknown key %q (want rules, schema, workspace, decoder, tests)", k)
		}
	})
	if tf.Decoder != nil && tf.Decoder.Debezium && tf.Workspace != "" {
		p.errAt(keyNode(root, "workspace"), "", "workspace applies to envelope events; a Debezium table mapping gives the workspace of its rows")
	}
	if len(tf.Rules) == 0 {
		p.errAt(root, "", "rules is required: the automation files or directories to test")
	}
	switch {
	case testsNode == nil:
		p.errAt(root, "", "tests is required")
	case testsNode.Kind != yaml.SequenceNode:
		p.errAt(testsNode, "", "tests must be a list")
	default:
		names := map[string]int{}
		for _, n := range testsNode.Content {
			t := p.test(n, tf.Workspace)
			if t == nil {
				continue
			}
			if prev, dup := names[t.Name]; dup && t.Name != "" {
				p.errAt(n, t.Name, "the name is already used by the test at line %d", prev)
			}
			names[t.Name] = t.Line
			tf.Tests = append(tf.Tests, t)
		}
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, p.errs
	}
	return tf, nil
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

type testParser struct {
	file string
	errs ErrorList
}

func (p *testParser) errAt(n *yaml.Node, test, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Col: n.Column, Test: test, Msg: fmt.Sprintf(format, args...)})
}

func (p *testParser) mapping(n *yaml.Node, test, what string, fn func(k string, key, val *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		p.errAt(n, test, "%s must be a mapping", what)
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if seen[k] {
			p.errAt(n.Content[i], test, "%q appears twice", k)
			continue
		}
		seen[k] = true
		fn(k, n.Content[i], n.Content[i+1])
	}
	return true
}

func (p *testParser) str(n *yaml.Node, test, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errAt(n, test, "%s must be a string", what)
		return "", false
	}
	return n.Value, true
}

func (p *testParser) strings(n *yaml.Node, test, what string) []string {
	if n.Kind == yaml.ScalarNode {
		s, _ := p.str(n, test, what)
		return []string{s}
	}
	if n.Kind != yaml.SequenceNode {
		p.errAt(n, test, "%s must be a string or a list of strings", what)
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if s, ok := p.str(c, test, what+" entry"); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *testParser) boolean(n *yaml.Node, test, what string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		p.errAt(n, test, "%s must be true or false", what)
		return false, false
	}
	b, err := strconv.ParseBool(strings.ToLower(n.Value))
	return b, err == nil
}

func (p *testParser) test(n *yaml.Node, workspace string) *Test {
	t := &Test{Line: n.Line, Expect: Expect{OnlyListedActions: true}}
	listed := 0 // events listed, valid or not
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "name" {
				t.Name, _ = p.str(n.Content[i+1], "", "name")
			}
		}
	}
	if !p.mapping(n, t.Name, "a test", func(k string, key, v *yaml.Node) {
		switch k {
		case "name":
		case "events":
			if v.Kind != yaml.SequenceNode {
				p.errAt(v, t.Name, "events must be a list of event envelopes")
				return
			}
			listed = len(v.Content)
			for _, e := range v.Content {
				if e.Kind != yaml.MappingNode {
					p.errAt(e, t.Name, "an event must be a mapping (an event envelope as docs/events.md describes)")
					continue
				}
				var buf bytes.Buffer
				if err := writeJSON(&buf, e, workspace); err != nil {
					p.errAt(err.node, t.Name, "event: %s", err.msg)
					continue
				}
				t.Events = append(t.Events, EventSource{Line: e.Line, JSON: buf.Bytes()})
			}
		case "until":
			if s, ok := p.str(v, t.Name, "until"); ok {
				u, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					p.errAt(v, t.Name, "until: want an RFC 3339 time such as 2026-12-01T00:00:00Z")
					return
				}
				t.Until = u
			}
		case "expect":
			p.expect(v, t)
		default:
			p.errAt(key, t.Name, "unknown key %q (want name, events, until, expect)", k)
		}
	}) {
		return nil
	}
	if t.Name == "" {
		p.errAt(n, "", "a test needs a name")
	}
	if listed == 0 && t.Until.IsZero() {
		p.errAt(n, t.Name, "a test needs events")
	}
	return t
}

func (p *testParser) expect(n *yaml.Node, t *Test) {
	p.mapping(n, t.Name, "expect", func(k string, key, v *yaml.Node) {
		switch k {
		case "actions":
			t.Expect.Actions = p.expectedList(v, t.Name, "action", actionFields)
		case "runs":
			t.Expect.Runs = p.expectedList(v, t.Name, "run", runFields)
		case "only_listed_actions":
			t.Expect.OnlyListedActions, _ = p.boolean(v, t.Name, k)
		case "only_listed_runs":
			t.Expect.OnlyListedRuns, _ = p.boolean(v, t.Name, k)
		default:
			p.errAt(key, t.Name, "unknown key %q under expect (want actions, runs, only_listed_actions, only_listed_runs)", k)
		}
	})
}

func (p *testParser) expectedList(n *yaml.Node, test, kind string, fields map[string]map[string]bool) []*Expected {
	if n.Kind != yaml.SequenceNode {
		p.errAt(n, test, "expect.%ss must be a list", kind)
		return nil
	}
	out := []*Expected{}
	for _, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			p.errAt(item, test, "an expected %s must be a mapping of %s fields", kind, kind)
			continue
		}
		ok := true
		fieldsOut := map[string]any{}
		for i := 0; i+1 < len(item.Content); i += 2 {
			key, val := item.Content[i], item.Content[i+1]
			path := strings.Split(key.Value, ".")
			sub, known := fields[path[0]]
			switch {
			case !known:
				p.errAt(key, test, "expected %s: unknown field %q (%s fields: %s)", kind, path[0], kind, fieldNames(fields))
				ok = false
				continue
			case len(path) > 2 || (len(path) == 2 && (sub == nil || !sub[path[1]])):
				p.errAt(key, test, "expected %s: unknown field %q", kind, key.Value)
				ok = false
				continue
			}
			var buf bytes.Buffer
			if err := writeJSON(&buf, val, ""); err != nil {
				p.errAt(err.node, test, "expected %s: %s", kind, err.msg)
				ok = false
				continue
			}
			v, _ := decodeJSON(buf.Bytes())
			if len(path) == 1 {
				if m, isMap := v.(map[string]any); isMap && sub != nil {
					for k := range m {
						if !sub[k] {
							p.errAt(val, test, "expected %s: unknown field %q", kind, path[0]+"."+k)
							ok = false
						}
					}
				}
				if prev, dup := fieldsOut[path[0]].(map[string]any); dup {
					if m, isMap := v.(map[string]any); isMap {
						for k, x := range m {
							prev[k] = x
						}
						continue
					}
				}
				fieldsOut[path[0]] = v
				continue
			}
			m, _ := fieldsOut[path[0]].(map[string]any)
			if m == nil {
				m = map[string]any{}
				fieldsOut[path[0]] = m
			}
			m[path[1]] = v
		}
		if !ok {
			continue
		}
		var buf bytes.Buffer
		_ = writeJSON(&buf, item, "")
		out = append(out, &Expected{Line: item.Line, Fields: fieldsOut, Text: buf.String()})
	}
	return out
}

func fieldNames(fields map[string]map[string]bool) string {
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// yamlError is a YAML value that has no JSON form.
type yamlError struct {
	node *yaml.Node
	msg  string
}

// writeJSON writes a YAML node as compact JSON, keys in source order.
// workspace, if not "", is added to a top-level mapping that has no
// workspace key (the file's default workspace for events).
func writeJSON(buf *bytes.Buffer, n *yaml.Node, workspace string) *yamlError {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return writeJSON(buf, n.Content[0], workspace)
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias, workspace)
	case yaml.MappingNode:
		buf.WriteByte('{')
		hasWS := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return &yamlError{k, "a key must be a string"}
			}
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				return &yamlError{k, "YAML merge keys (<<) are not supported"}
			}
			if k.Value == "workspace" {
				hasWS = true
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			b, _ := json.Marshal(k.Value)
			buf.Write(b)
			buf.WriteByte(':')
			if err := writeJSON(buf, n.Content[i+1], ""); err != nil {
				return err
			}
		}
		if workspace != "" && !hasWS {
			if len(n.Content) > 0 {
				buf.WriteByte(',')
			}
			b, _ := json.Marshal(workspace)
			buf.WriteString(`"workspace":`)
			buf.Write(b)
		}
		buf.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c, ""); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	}
	// Scalars.
	v := n.Value
	switch n.ShortTag() {
	case "!!null":
		buf.WriteString("null")
	case "!!bool":
		b, _ := strconv.ParseBool(strings.ToLower(v))
		buf.WriteString(strconv.FormatBool(b))
	case "!!int":
		if isJSONNumber(v) {
			buf.WriteString(v)
			return nil
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 0, 64)
		if err != nil {
			return &yamlError{n, fmt.Sprintf("%s is not an integer JSON can hold", v)}
		}
		buf.WriteString(strconv.FormatInt(i, 10))
	case "!!float":
		if isJSONNumber(v) {
			buf.WriteString(v)
			return nil
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(v, "_", ""), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return &yamlError{n, fmt.Sprintf("%s has no JSON form (quote it for a string)", v)}
		}
		buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	default: // !!str, !!timestamp, !!binary and custom tags: the text
		b, _ := json.Marshal(v)
		buf.Write(b)
	}
	return nil
}

func isJSONNumber(s string) bool {
	return json.Valid([]byte(s)) && s != "" && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
}

// decodeJSON decodes JSON into maps, slices and json.Number values.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}
