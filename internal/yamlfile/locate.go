package yamlfile

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The YAML library (go.yaml.in/yaml/v3) decides whether a file is valid
// YAML, but it places a syntax error badly: at the start of the block or
// flow collection it was parsing (often line 1), one line early for some
// errors, and never at a column. locate finds the mistake itself: a
// scanner of YAML's structure as configuration files use it (block
// mappings and sequences, flow collections, quoted, plain and block
// scalars, anchors, aliases, tags, comments), which knows the mistakes
// authors make: an unclosed bracket or quote, a bad indentation, a tab
// indenting a line, a value holding ": ", a key without its ": ", text
// after a closing quote or bracket, an alias to no anchor.
//
// locate only runs on files the library rejected, and only says where
// and what; the library stays the judge of what is valid. On a file the
// library accepts, locate finds nothing (FuzzLocate checks it): it never
// blames valid YAML. For a construct it does not model (explicit "? "
// keys, several documents, directives, properties before a key), it
// gives up, and Parse falls back to the library's line.

// finding is a syntax error: where, 1-based (the column in characters),
// and what is wrong.
type finding struct {
	line, col int
	msg       string
}

// locate returns the first syntax error of data, or nil when it finds
// none or meets something it does not model. With extra, the library
// read the first document and found more after it: what locate then
// reports is where the document ends (a second document, a line less
// indented than the first, text after a document that is one scalar or
// collection); without, the error is inside the first document, and
// locate gives up where it ends.
func locate(data []byte, extra bool) *finding {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil
	}
	// The line breaks of YAML 1.1, as the library counts lines.
	text := strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n").Replace(string(data))
	raw := strings.Split(text, "\n")
	l := &locator{lines: make([][]rune, len(raw)), anchors: map[string]bool{}, extra: extra}
	for i, s := range raw {
		l.lines[i] = []rune(s)
	}
	for i := range l.lines {
		if f := l.line(i); f != nil {
			return l.blame(f)
		}
		if l.gaveUp {
			return nil
		}
	}
	switch {
	case l.quote != nil:
		q := l.quote
		return &finding{q.line, q.col + 1, fmt.Sprintf("this %s opens a string that is never closed", quoteName(q.char))}
	case len(l.flows) > 0 && l.flowSuspect != nil:
		return l.flowSuspect
	case len(l.flows) > 0:
		b := l.flows[len(l.flows)-1]
		return &finding{b.line, b.col + 1, fmt.Sprintf("this '%c' is never closed (expected '%c')", b.char, closer(b.char))}
	}
	return nil
}

type locator struct {
	lines  [][]rune
	levels []level // the open block collections, innermost last

	// What the previous lines leave open.
	expect *int        // the last entry's value is on the next lines, indented more than this
	plain  *plainValue // a plain scalar that deeper lines may continue
	block  *blockValue // a block scalar (| or >) whose lines follow
	quote  *openQuote  // a quoted scalar not closed yet
	flows  []bracket   // open flow collections, innermost last
	// flowPlain tells that flow context is inside a plain scalar.
	flowPlain bool

	anchors map[string]bool
	props   bool // the last line ended with properties (a tag, an anchor) of a node on the next
	started bool // a line with content was seen
	marker  bool // the document started with "---"
	gaveUp  bool
	extra   bool // see locate

	// suspect is a string that ran over several lines, where a key looked
	// to start: when the next error is on the line where it closed, the
	// string is the mistake.
	suspect     *finding
	suspectLine int
	// flowSuspect is the innermost open bracket when a line inside its
	// flow collection looked like a block entry (a key or a "- " item no
	// deeper than the line the collection opened on): most likely, its
	// closing bracket was forgotten. It is blamed for the errors found
	// while the collection is open, or on the line that closes it.
	flowSuspect    *finding
	flowClosedLine int
}

// level is an open block mapping or sequence.
type level struct {
	indent int  // column of its keys or dashes
	seq    bool // a sequence, else a mapping
	// name and line are the last key of a mapping, for messages; a
	// sequence's first item line.
	name string
	line int
}

func (v level) describe() string {
	if v.seq {
		return fmt.Sprintf("%d (the \"- \" items of line %d)", v.indent, v.line)
	}
	return fmt.Sprintf("%d (%q, line %d)", v.indent, v.name, v.line)
}

// spaces is "1 space", "4 spaces".
func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return fmt.Sprintf("%d spaces", n)
}

// plainValue is a plain scalar that may continue on lines indented at
// least min.
type plainValue struct {
	min   int
	start int // its column
	line  int
	text  string
	key   string // the key it is the value of; "" for a list item or the document
	// keyLine is the key's line.
	keyLine int
}

// blockValue is a block scalar's lines: indented more than parent, the
// first one setting the indentation of the others (content, -1 until
// then).
type blockValue struct {
	parent, content int
	key             string
	line            int
}

// openQuote is a quoted scalar running over lines.
type openQuote struct {
	char      rune
	line, col int
	owner     int // indentation of the block entry it is a value of
}

// bracket is an open flow collection. A mapping remembers whether its
// current entry has had its ':'.
type bracket struct {
	char      rune
	line, col int
	colon     bool
}

func closer(open rune) rune {
	if open == '[' {
		return ']'
	}
	return '}'
}

func quoteName(q rune) string {
	if q == '"' {
		return `'"'`
	}
	return `"'"`
}

// endOfDocument reports f, where the first document ends, when locating
// what follows it (extra); else the error is elsewhere, and locate gives
// up.
func (l *locator) endOfDocument(f *finding) *finding {
	if l.extra {
		return f
	}
	l.gaveUp = true
	return nil
}

// secondDocument reports the document marker on line ln when content
// follows it: an empty document after the first is harmless.
func (l *locator) secondDocument(ln int) *finding {
	for i := ln - 1; i < len(l.lines); i++ {
		rs := l.lines[i]
		from := 0
		if i == ln-1 {
			from = 3
		}
		if !restIsEmpty(rs, from) && !(i > ln-1 && (hasPrefixWord(rs, "---") || hasPrefixWord(rs, "...")) && restIsEmpty(rs, 3)) {
			return l.endOfDocument(&finding{ln, 1, "a second YAML document starts here: a file holds one document"})
		}
	}
	l.gaveUp = true
	return nil
}

// blame returns f, or the suspect string when f is on the line where
// that string closed, or the suspect bracket when f is found inside its
// flow collection or on the line that closes it.
func (l *locator) blame(f *finding) *finding {
	if l.suspect != nil && f.line == l.suspectLine {
		return l.suspect
	}
	if l.flowSuspect != nil && (len(l.flows) > 0 || f.line == l.flowClosedLine) {
		return l.flowSuspect
	}
	return f
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' }

// skipSpaces returns the first index at or after i that is no space or
// tab.
func skipSpaces(rs []rune, i int) int {
	for i < len(rs) && isSpace(rs[i]) {
		i++
	}
	return i
}

// restIsEmpty tells whether rs from i holds only spaces and a comment.
func restIsEmpty(rs []rune, i int) bool {
	i = skipSpaces(rs, i)
	return i == len(rs) || rs[i] == '#'
}

// isDash tells whether rs has a sequence entry indicator at i: "-"
// followed by a space or the end of the line.
func isDash(rs []rune, i int) bool {
	return i < len(rs) && rs[i] == '-' && (i+1 == len(rs) || isSpace(rs[i+1]))
}

// line reads one line (0-based i).
func (l *locator) line(i int) *finding {
	rs := l.lines[i]
	ln := i + 1
	if l.quote != nil {
		q := l.quote
		end := scanQuote(rs, 0, q.char)
		if end < 0 {
			return nil
		}
		l.quote = nil
		l.checkSuspect(q, ln)
		if len(l.flows) > 0 {
			return l.flow(rs, end+1, ln)
		}
		return l.afterValue(rs, end+1, ln, true)
	}
	if len(l.flows) > 0 {
		l.checkFlowSuspect(rs, ln)
		return l.flow(rs, 0, ln)
	}
	n := 0
	for n < len(rs) && rs[n] == ' ' {
		n++
	}
	if l.block != nil {
		f, in := l.inBlock(rs, n, ln)
		if f != nil || in {
			return f
		}
		l.block = nil
	}
	// A tab in a line's indentation is an error, but in a plain scalar's
	// continuation lines from the scalar's own indentation on. (Before a
	// comment, or on a blank line, the library is lenient in ways not
	// modelled here: no error.)
	c := skipSpaces(rs, n)
	for x := n; x < c; x++ {
		if rs[x] != '\t' {
			continue
		}
		if l.plain != nil && x < l.plain.min || l.plain == nil && c < len(rs) && rs[c] != '#' {
			return &finding{ln, x + 1, "a tab indents this line: YAML indents with spaces only"}
		}
	}
	if c == len(rs) {
		return nil // blank
	}
	if rs[c] == '#' {
		l.plain = nil // a comment ends a plain scalar
		return nil
	}
	if n < c {
		n = c // tabs a plain scalar's continuation may have
	}
	if n == 0 && (hasPrefixWord(rs, "---") || hasPrefixWord(rs, "...")) {
		if !l.started && !l.marker && string(rs[:3]) == "---" {
			l.marker = true
			if restIsEmpty(rs, 3) {
				return nil // the start of the document
			}
			l.gaveUp = true // content on the marker's line: not modelled
			return nil
		}
		return l.secondDocument(ln)
	}
	if n == 0 && rs[0] == '%' && !l.started {
		l.gaveUp = true // a directive
		return nil
	}
	if p := l.plain; p != nil && n >= p.min {
		return l.continuation(rs, n, ln)
	}
	l.plain = nil
	return l.blockLine(rs, n, ln)
}

// hasPrefixWord tells whether rs starts with w followed by a space or its
// end.
func hasPrefixWord(rs []rune, w string) bool {
	return len(rs) >= len(w) && string(rs[:len(w)]) == w && (len(rs) == len(w) || isSpace(rs[len(w)]))
}

// inBlock tells whether a line belongs to the block scalar being read.
func (l *locator) inBlock(rs []rune, n, ln int) (*finding, bool) {
	b := l.block
	if n < len(rs) && rs[n] == '\t' && (b.content < 0 || n < b.content) {
		return &finding{ln, n + 1, "a tab indents this line of a block scalar: YAML indents with spaces only"}, true
	}
	if n == len(rs) || (skipSpaces(rs, n) == len(rs) && (b.content < 0 || n < b.content)) {
		return nil, true // blank
	}
	if n == 0 && (hasPrefixWord(rs, "---") || hasPrefixWord(rs, "...")) {
		return l.secondDocument(ln), true
	}
	if b.content < 0 {
		if n > b.parent {
			b.content = n
			return nil, true
		}
		return nil, false
	}
	if n >= b.content {
		return nil, true
	}
	if n > b.parent && b.parent >= 0 && rs[n] != '#' {
		return &finding{ln, n + 1, fmt.Sprintf("bad indentation: this line is indented %s, inside the block scalar of %s (line %d) but less than its first line (%d)",
			spaces(n), keyName(b.key), b.line, b.content)}, true
	}
	return nil, false
}

func keyName(key string) string {
	if key == "" {
		return "the list item"
	}
	return fmt.Sprintf("%q", key)
}

// continuation reads a line that continues a plain scalar: it may not
// hold ": ", which would make it a key.
func (l *locator) continuation(rs []rune, n, ln int) *finding {
	p := l.plain
	if rs[n] == ':' || rs[n] == '?' {
		l.gaveUp = true // the value indicator of a multi-line key, or an explicit key
		return nil
	}
	for i := n; i < len(rs); i++ {
		switch {
		case rs[i] == '#' && i > n && isSpace(rs[i-1]):
			l.plain = nil
			return nil
		case rs[i] == ':' && (i+1 == len(rs) || isSpace(rs[i+1])):
			if n == p.start && p.key == "" && p.line == ln-1 {
				return missingColon(p.line, p.start, p.text)
			}
			word := firstWord(rs[n:])
			if p.key == "" {
				return &finding{ln, n + 1, fmt.Sprintf("bad indentation: %q is indented under the list item of line %d, which already has a value (%q): align it with the item's keys to make it a key, or quote a value holding \": \"",
					word, p.line, p.text)}
			}
			return &finding{ln, n + 1, fmt.Sprintf("bad indentation: %q is indented under %q (line %d), which already has a value: align it with %q to make it a key of its own, or quote a value holding \": \"",
				word, p.key, p.keyLine, p.key)}
		}
	}
	return nil
}

// firstWord is the key-like start of a line: up to a ':' or a space.
func firstWord(rs []rune) string {
	i := 0
	for i < len(rs) && rs[i] != ':' && !isSpace(rs[i]) {
		i++
	}
	return string(rs[:i])
}

// missingColon explains a scalar standing where a key and its value were
// meant: "id:a" (no space after the colon) or "id a", "when" (no colon).
func missingColon(line, col int, text string) *finding {
	if i := strings.IndexByte(text, ':'); i > 0 && i+1 < len(text) {
		fixed := text[:i+1] + " " + text[i+1:]
		return &finding{line, col + 1 + utf8.RuneCountInString(text[:i]), fmt.Sprintf("missing space after ':' in %q (a key and its value: %q)", text, fixed)}
	}
	if i := strings.IndexAny(text, " \t"); i > 0 {
		return &finding{line, col + 1, fmt.Sprintf("missing ':' after the key in %q (a key and its value: %q)", text, text[:i]+":"+text[i:])}
	}
	return &finding{line, col + 1, fmt.Sprintf("missing ':' after %q (a key is followed by \": \" and its value, or by \":\" and its block on the next lines)", text)}
}

// blockLine reads a line of block context whose content starts at n.
func (l *locator) blockLine(rs []rune, n, ln int) *finding {
	if (rs[n] == ':' || rs[n] == '?') && (n+1 == len(rs) || isSpace(rs[n+1])) {
		l.gaveUp = true // explicit keys and values
		return nil
	}
	expect := l.expect
	l.expect = nil
	var popped *level
	for len(l.levels) > 0 && l.levels[len(l.levels)-1].indent > n {
		v := l.levels[len(l.levels)-1]
		popped = &v
		l.levels = l.levels[:len(l.levels)-1]
	}
	// A compact sequence (a key's list at the key's own indentation) ends
	// at the next key of that mapping.
	if k := len(l.levels); k >= 2 && l.levels[k-1].seq && l.levels[k-1].indent == n && !l.levels[k-2].seq && l.levels[k-2].indent == n && !isDash(rs, n) {
		l.levels = l.levels[:k-1]
	}
	started := l.started
	l.started = true
	switch {
	case expect != nil && n > *expect:
		return l.entry(rs, n, ln, *expect, true)
	case len(l.levels) == 0 && started && popped == nil:
		return l.endOfDocument(&finding{ln, n + 1, "text after the end of the document: the file is one scalar or collection, which ends before this line"})
	case len(l.levels) == 0 && started:
		return l.endOfDocument(&finding{ln, n + 1, fmt.Sprintf("bad indentation of %q (%s): less than the file's first line (%s), which ends the document here",
			entryName(rs[n:]), spaces(n), spaces(popped.indent))})
	case len(l.levels) == 0:
		return l.entry(rs, n, ln, -1, true)
	}
	top := &l.levels[len(l.levels)-1]
	switch {
	case expect != nil && n == *expect && top.indent == n && !top.seq && isDash(rs, n):
		return l.entry(rs, n, ln, n, true) // a compact sequence
	case top.indent == n:
		return l.entry(rs, n, ln, n, false)
	case popped != nil:
		return &finding{ln, n + 1, fmt.Sprintf("bad indentation of %q (%s): the entries around it are at %s and %s",
			entryName(rs[n:]), spaces(n), top.describe(), popped.describe())}
	}
	return &finding{ln, n + 1, fmt.Sprintf("bad indentation of %q (%s): deeper than %s, whose value is on its line",
		entryName(rs[n:]), spaces(n), top.describe())}
}

// entryName names a line's entry for messages: its key, or "- ...".
func entryName(rs []rune) string {
	if isDash(rs, 0) {
		return "- " + firstWord(rs[skipSpaces(rs, 1):])
	}
	return firstWord(rs)
}

// entry reads a block entry starting at column c: a "- " item, a key and
// its value, or a value alone. parent is the indentation the entry's
// nested lines must go deeper than; fresh tells that no level is open at
// c yet (the entry opens one, if it is an item or a key).
func (l *locator) entry(rs []rune, c, ln, parent int, fresh bool) *finding {
	var top *level
	if !fresh {
		top = &l.levels[len(l.levels)-1]
	}
	props := l.props // of this entry's node: a value alone, or the collection
	l.props = false
	if isDash(rs, c) {
		switch {
		case fresh:
			l.levels = append(l.levels, level{indent: c, seq: true, line: ln})
		case !top.seq:
			return &finding{ln, c + 1, fmt.Sprintf("a list item where a key is expected: the keys at this indentation are those of a mapping (%q, line %d)", top.name, top.line)}
		}
		d := skipSpaces(rs, c+1)
		for x := c + 1; x < d; x++ {
			if rs[x] == '\t' {
				return &finding{ln, x + 1, "a tab after a list item's '-': separate it from its value with spaces"}
			}
		}
		if d == len(rs) || rs[d] == '#' {
			l.expect = &c
			return nil
		}
		return l.entry(rs, d, ln, c, true)
	}
	key, valueAt, isKey := l.key(rs, c)
	if l.gaveUp {
		return nil
	}
	if isKey {
		switch {
		case fresh:
			l.levels = append(l.levels, level{indent: c, name: key, line: ln})
		case top.seq:
			return &finding{ln, c + 1, fmt.Sprintf("a key where a list item (\"- \") is expected: the list of line %d holds items, not keys", top.line)}
		default:
			top.name, top.line = key, ln
		}
		return l.value(rs, valueAt, ln, c, key, ln)
	}
	l.props = props
	if !fresh {
		if strings.ContainsRune("|>\"'[{&!*", rs[c]) {
			l.gaveUp = true // not a plain scalar: not modelled here
			return nil
		}
		return missingColon(ln, c, strings.TrimRight(string(rs[c:commentStart(rs, c)]), " \t"))
	}
	return l.value(rs, c, ln, parent, "", ln)
}

// commentStart is the index of the comment of a plain line from i, or its
// length.
func commentStart(rs []rune, i int) int {
	for j := i; j < len(rs); j++ {
		if rs[j] == '#' && j > 0 && isSpace(rs[j-1]) {
			return j
		}
	}
	return len(rs)
}

// key tells whether the entry at c is "key: value" (or "key:" before a
// block), and where its value starts.
func (l *locator) key(rs []rune, c int) (string, int, bool) {
	switch rs[c] {
	case '"', '\'':
		end := scanQuote(rs, c+1, rs[c])
		if end < 0 {
			return "", 0, false
		}
		i := skipSpaces(rs, end+1)
		if i < len(rs) && rs[i] == ':' && (i+1 == len(rs) || isSpace(rs[i+1])) {
			return string(rs[c+1 : end]), skipSpaces(rs, i+1), true
		}
		return "", 0, false
	case '?':
		if c+1 == len(rs) || isSpace(rs[c+1]) {
			l.gaveUp = true // an explicit key: not modelled
			return "", 0, false
		}
	case '&', '!':
		// Properties of a key are not modelled; of a value, the value
		// reads them.
		e := c + 1
		if rs[c] == '!' {
			for e < len(rs) && !isSpace(rs[e]) {
				e++
			}
		} else {
			e = anchorEnd(rs, e)
		}
		if e = skipSpaces(rs, e); e < len(rs) && e > c+1 {
			if _, _, isKey := l.key(rs, e); isKey {
				l.gaveUp = true
			}
		}
		return "", 0, false
	case '[', '{':
		if l.lineHasKey(rs, c) {
			l.gaveUp = true // a flow collection as a key
		}
		return "", 0, false
	case ',', ']', '}', '#', '*', '|', '>', '%', '@', '`':
		return "", 0, false
	}
	for i := c; i < len(rs); i++ {
		switch {
		case rs[i] == '#' && i > c && isSpace(rs[i-1]):
			return "", 0, false
		case rs[i] == ':' && (i+1 == len(rs) || isSpace(rs[i+1])):
			return strings.TrimRight(string(rs[c:i]), " \t"), skipSpaces(rs, i+1), true
		}
	}
	return "", 0, false
}

// lineHasKey tells whether ": " follows a flow collection or properties
// at c on the line (outside quotes), which would make them part of a key.
func (l *locator) lineHasKey(rs []rune, c int) bool {
	depth := 0
	for i := c; i < len(rs); i++ {
		switch rs[i] {
		case '"', '\'':
			end := scanQuote(rs, i+1, rs[i])
			if end < 0 {
				return false
			}
			i = end
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case '#':
			if i > c && isSpace(rs[i-1]) {
				return false
			}
		case ':':
			if depth <= 0 && (i+1 == len(rs) || isSpace(rs[i+1])) {
				return true
			}
		}
	}
	return false
}

// value reads the value that starts at v on a line: of key (on line
// keyLine), or alone when key is "". parent is the indentation its
// nested lines must go deeper than.
func (l *locator) value(rs []rune, v, ln, parent int, key string, keyLine int) *finding {
	var seen [2]bool // a tag, an anchor
	if l.props {
		seen = [2]bool{true, true} // the previous line's, of this node
		l.props = false
	}
	for {
		if v >= len(rs) || rs[v] == '#' {
			l.expect = &parent
			l.props = seen[0] || seen[1]
			return nil
		}
		if rs[v] != '&' && rs[v] != '!' {
			break
		}
		k := strings.IndexRune("!&", rs[v])
		if seen[k] {
			l.gaveUp = true // a second tag or anchor: the library's business
			return nil
		}
		seen[k] = true
		// Properties: an anchor or a tag.
		e := v + 1
		if rs[v] == '!' {
			for e < len(rs) && !isSpace(rs[e]) {
				e++
			}
		} else {
			e = anchorEnd(rs, e)
			if e == v+1 {
				return &finding{ln, v + 1, "'&' needs an anchor name after it (letters, digits, '-' and '_')"}
			}
			if e < len(rs) && !isSpace(rs[e]) {
				l.gaveUp = true
				return nil
			}
			l.anchors[string(rs[v+1:e])] = true
		}
		v = skipSpaces(rs, e)
	}
	switch r := rs[v]; {
	case r == '*' && (seen[0] || seen[1]):
		l.gaveUp = true // properties of an alias: the library's business
		return nil
	case r == '*':
		e := anchorEnd(rs, v+1)
		name := string(rs[v+1 : e])
		if name == "" {
			return &finding{ln, v + 1, "'*' needs the name of an anchor after it (quote a value starting with '*')"}
		}
		if !l.anchors[name] {
			return &finding{ln, v + 1, fmt.Sprintf("alias *%s refers to no anchor: no &%s before it (quote a value starting with '*')", name, name)}
		}
		return l.afterValue(rs, e, ln, false)
	case r == '"' || r == '\'':
		end := scanQuote(rs, v+1, r)
		if end < 0 {
			l.quote = &openQuote{char: r, line: ln, col: v, owner: parent}
			return nil
		}
		return l.afterValue(rs, end+1, ln, false)
	case r == '[' || r == '{':
		l.flows = append(l.flows, bracket{char: r, line: ln, col: v})
		l.flowPlain = false
		return l.flow(rs, v+1, ln)
	case r == '|' || r == '>':
		e := v + 1
		explicit := 0
		for e < len(rs) && (rs[e] == '+' || rs[e] == '-' || rs[e] >= '1' && rs[e] <= '9') {
			if rs[e] != '+' && rs[e] != '-' {
				explicit = int(rs[e] - '0')
			}
			e++
		}
		if !restIsEmpty(rs, e) {
			return &finding{ln, e + 1, fmt.Sprintf("text after '%c': a block scalar's text starts on the next line (quote a value that starts with '%c')", r, r)}
		}
		b := &blockValue{parent: parent, content: -1, key: key, line: ln}
		if explicit > 0 {
			b.content = max(parent, 0) + explicit
		}
		l.block = b
		return nil
	case (isDash(rs, v) || r == ']' || r == '}' || r == ',') && len(l.levels) == 0:
		// After the document's properties: the document is empty, and
		// the library reads no further.
		return l.endOfDocument(&finding{ln, v + 1, fmt.Sprintf("'%c' after the end of the document", r)})
	case isDash(rs, v):
		return &finding{ln, v + 1, "a list cannot start on the line of its key: put its \"- \" items on the next lines, indented"}
	case r == '?' && (v+1 == len(rs) || isSpace(rs[v+1])):
		l.gaveUp = true
		return nil
	case r == ']' || r == '}':
		return &finding{ln, v + 1, fmt.Sprintf("'%c' closes nothing", r)}
	case r == ',' || r == '@' || r == '`' || r == '%':
		return &finding{ln, v + 1, fmt.Sprintf("a value cannot start with '%c': quote it", r)}
	}
	// A plain scalar.
	end := len(rs)
	for i := v; i < len(rs); i++ {
		if rs[i] == '#' && i > v && isSpace(rs[i-1]) {
			end = i
			break
		}
		if rs[i] == ':' && (i+1 == len(rs) || isSpace(rs[i+1])) {
			if key != "" {
				return &finding{ln, i + 1, fmt.Sprintf("the value of %q holds \": \": quote the value (or, for a mapping, put its keys on the next lines, indented)", key)}
			}
			return &finding{ln, i + 1, "a value holds \": \": quote it"}
		}
	}
	text := strings.TrimRight(string(rs[v:end]), " \t")
	l.plain = &plainValue{min: parent + 1, start: v, line: ln, text: text, key: key, keyLine: keyLine}
	if end < len(rs) {
		l.plain = nil // a comment ends it
	}
	return nil
}

// afterValue checks what follows a quoted scalar, a flow collection or an
// alias on its line: nothing but a comment. multiline tells that the
// value started on an earlier line: what follows it then depends on
// columns locate does not model, and it gives up, unless a suspect
// string or bracket explains the line.
func (l *locator) afterValue(rs []rune, i, ln int, multiline bool) *finding {
	last := i - 1 // the value's last character: a quote, a bracket, or an alias's
	i = skipSpaces(rs, i)
	if i == len(rs) || rs[i] == '#' { // a comment may follow a token at once
		return nil
	}
	if rs[i] == ':' {
		l.gaveUp = true // a multi-line key, or a key on a flow collection
		return nil
	}
	if len(l.levels) == 0 {
		// The document is this scalar or collection: the library takes
		// what follows for another document.
		return l.endOfDocument(&finding{ln, i + 1, "text after the end of the document: the file is one scalar or collection, which ends here"})
	}
	if multiline {
		// Text left of the innermost block's indentation would end blocks.
		inside := i > l.levels[len(l.levels)-1].indent
		if inside && (l.suspect != nil && l.suspectLine == ln || l.flowSuspect != nil && l.flowClosedLine == ln) {
			return &finding{ln, i + 1, "text after the end of a value"} // blamed on the suspect
		}
		l.gaveUp = true
		return nil
	}
	if rs[i] == ']' || rs[i] == '}' {
		return &finding{ln, i + 1, fmt.Sprintf("'%c' closes nothing", rs[i])}
	}
	switch r := rs[last]; r {
	case '"', '\'':
		return &finding{ln, i + 1, "text after the closing quote: a value that starts with a quote ends with it; quote the whole value" + quoteHint(rs, ln, last)}
	case ']', '}':
		return &finding{ln, i + 1, fmt.Sprintf("text after '%c': a value that starts with '%c' is a collection and ends there; quote the whole value if it is text", r, closerOpen(r))}
	}
	return &finding{ln, i + 1, "text after the alias: quote the whole value if it is text"}
}

func closerOpen(r rune) rune {
	if r == ']' {
		return '['
	}
	return '{'
}

// quoteHint suggests the value of the line that ends a quoted scalar at
// last, from its opening quote to the end of the line, in the other
// quotes: ` (write '"x" in changed')`; "" when that does not work.
func quoteHint(rs []rune, ln, last int) string {
	q := rs[last]
	start := -1
	for j := 0; j < last && start < 0; j++ {
		if rs[j] == q && scanQuote(rs, j+1, q) == last {
			start = j
		}
	}
	if start < 0 {
		return "" // the string opened on an earlier line
	}
	if start > 0 && !isSpace(rs[start-1]) {
		return ""
	}
	v := strings.TrimRight(string(rs[start:commentStart(rs, last+1)]), " \t")
	other := '\''
	if q == '\'' {
		other = '"'
	}
	if strings.ContainsRune(v, other) || strings.Contains(v, "\\") {
		return ""
	}
	return fmt.Sprintf(" (write %c%s%c)", other, v, other)
}

// flow reads flow context from i, in the innermost open collection, as
// the library's scanner reads it: at the start of a token, a quote opens
// a quoted scalar, ':' is a value indicator and '#' a comment; inside a
// plain scalar (which may run over lines), ':' ends it only before a
// space or the end of the line, and '#' starts a comment only after a
// space; ",?[]{}" always end it.
func (l *locator) flow(rs []rune, i, ln int) *finding {
	for ; i < len(rs); i++ {
		r := rs[i]
		if isSpace(r) {
			continue
		}
		top := &l.flows[len(l.flows)-1]
		if l.flowPlain {
			switch {
			case r == '#' && (i == 0 || isSpace(rs[i-1])):
				l.flowPlain = false
				return nil
			case r == ':' && (i+1 == len(rs) || isSpace(rs[i+1])):
				l.flowPlain = false
			case strings.ContainsRune(",?[]{}", r):
				l.flowPlain = false
			default:
				continue
			}
		}
		switch {
		case r == '"' || r == '\'':
			end := scanQuote(rs, i+1, r)
			if end < 0 {
				l.quote = &openQuote{char: r, line: ln, col: i, owner: -1}
				return nil
			}
			i = end
		case r == '#':
			return nil
		case r == '[' || r == '{':
			l.flows = append(l.flows, bracket{char: r, line: ln, col: i})
		case r == ']' || r == '}':
			if closer(top.char) != r {
				return &finding{ln, i + 1, fmt.Sprintf("expected '%c' to close the '%c' at %d:%d, found '%c'", closer(top.char), top.char, top.line, top.col+1, r)}
			}
			l.flows = l.flows[:len(l.flows)-1]
			if len(l.flows) == 0 {
				l.flowClosedLine = ln
				f := l.afterValue(rs, i+1, ln, top.line != ln)
				if f == nil {
					l.flowSuspect = nil // closed, and nothing wrong came of it
				}
				return f
			}
		case r == ',':
			top.colon = false
		case r == '?':
			l.gaveUp = true // an explicit key
			return nil
		case r == '!':
			l.gaveUp = true // a tag in flow context: its characters may be brackets
			return nil
		case r == '&' || r == '*':
			e := anchorEnd(rs, i+1)
			if r == '&' {
				l.anchors[string(rs[i+1:e])] = true
			}
			i = e - 1
		case r == ':':
			if top.char != '{' {
				break
			}
			if top.colon {
				w := i
				for w > 0 && !isSpace(rs[w-1]) && !strings.ContainsRune("[{,", rs[w-1]) {
					w--
				}
				if w == i { // "a b : c": the word before the spaces
					for w > 0 && isSpace(rs[w-1]) {
						w--
					}
					e := w
					for w > 0 && !isSpace(rs[w-1]) && !strings.ContainsRune("[{,", rs[w-1]) {
						w--
					}
					return &finding{ln, w + 1, fmt.Sprintf("missing ',' before %q: entries of a flow mapping are separated by commas", string(rs[w:e]))}
				}
				return &finding{ln, w + 1, fmt.Sprintf("missing ',' before %q: entries of a flow mapping are separated by commas", string(rs[w:i]))}
			}
			top.colon = true
		default:
			l.flowPlain = true
		}
	}
	return nil
}

// scanQuote returns the index of the quote q closing a quoted scalar
// whose text starts at i on the line, or -1 when it does not close on it.
// In double quotes a backslash escapes the next character; in single
// quotes, ” is a quote.
func scanQuote(rs []rune, i int, q rune) int {
	for ; i < len(rs); i++ {
		switch {
		case q == '"' && rs[i] == '\\':
			i++
		case rs[i] == q && q == '\'' && i+1 < len(rs) && rs[i+1] == '\'':
			i++
		case rs[i] == q:
			return i
		}
	}
	return -1
}

// checkSuspect notes a quoted scalar that closed on line ln, having run
// over lines one of which looks like the start of a block entry no deeper
// than its owner: most likely, its closing quote was forgotten on its
// first line.
func (l *locator) checkSuspect(q *openQuote, ln int) {
	if ln == q.line {
		return
	}
	for i := q.line; i < ln; i++ { // 0-based indexes of the lines after the first
		rs := l.lines[i]
		n := skipSpaces(rs, 0)
		if n == len(rs) || (q.owner >= 0 && n > q.owner) {
			continue
		}
		if isDash(rs, n) || l.lookKey(rs, n) {
			l.suspect = &finding{q.line, q.col + 1, fmt.Sprintf("this %s opens a string that runs on to line %d: close it on its line", quoteName(q.char), ln)}
			l.suspectLine = ln
			return
		}
	}
}

// lookKey tells whether rs at n looks like a plain key: word characters
// up to ": " or a final ':'.
func (l *locator) lookKey(rs []rune, n int) bool {
	i := n
	for i < len(rs) && (rs[i] == '_' || rs[i] == '-' || rs[i] == '.' || rs[i] >= 'a' && rs[i] <= 'z' || rs[i] >= 'A' && rs[i] <= 'Z' || rs[i] >= '0' && rs[i] <= '9') {
		i++
	}
	return i > n && i < len(rs) && rs[i] == ':' && (i+1 == len(rs) || isSpace(rs[i+1]))
}

// checkFlowSuspect notes the innermost open bracket when line ln, inside
// a flow collection, looks like a block entry no deeper than the line the
// outermost collection opened on.
func (l *locator) checkFlowSuspect(rs []rune, ln int) {
	if l.flowSuspect != nil {
		return
	}
	open := l.lines[l.flows[0].line-1]
	n := skipSpaces(rs, 0)
	if n == len(rs) || n > skipSpaces(open, 0) || !(isDash(rs, n) || l.lookKey(rs, n)) {
		return
	}
	b := l.flows[len(l.flows)-1]
	l.flowSuspect = &finding{b.line, b.col + 1, fmt.Sprintf("this '%c' is not closed on its line (expected '%c' before line %d)", b.char, closer(b.char), ln)}
}

// anchorEnd is the end of the anchor or alias name starting at i:
// letters, digits, '-' and '_'.
func anchorEnd(rs []rune, i int) int {
	for i < len(rs) && (rs[i] == '-' || rs[i] == '_' || unicode.IsLetter(rs[i]) || unicode.IsDigit(rs[i])) {
		i++
	}
	return i
}
