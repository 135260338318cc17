package authoring

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"
)

// An expectation matches a record when every field it lists matches:
// nested objects field by field (a subset), lists element by element in
// order, numbers by value, strings exactly, or as instants when both are
// RFC 3339 times. A field the record leaves out matches null, "", 0,
// false or [].

// matchValue tells whether got satisfies want.
func matchValue(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, present := g[k]
			if !present {
				if !isZero(wv) {
					return false
				}
				continue
			}
			if !matchValue(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		if got == nil {
			return len(w) == 0
		}
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !matchValue(w[i], g[i]) {
				return false
			}
		}
		return true
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return false
		}
		a, okA := new(big.Rat).SetString(string(w))
		b, okB := new(big.Rat).SetString(string(g))
		return okA && okB && a.Cmp(b) == 0
	case string:
		g, ok := got.(string)
		if !ok {
			return got == nil && w == ""
		}
		if g == w {
			return true
		}
		tw, errW := time.Parse(time.RFC3339Nano, w)
		tg, errG := time.Parse(time.RFC3339Nano, g)
		return errW == nil && errG == nil && tw.Equal(tg)
	case nil:
		return got == nil || isZero(got)
	default: // bool
		return want == got
	}
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// fieldDiff is one field of an expectation that a record does not match.
type fieldDiff struct {
	path      string
	want, got any
	missing   bool
}

// diffFields lists the leaf fields of want that got does not match, in
// path order.
func diffFields(prefix string, want map[string]any, got map[string]any) []fieldDiff {
	var out []fieldDiff
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		wv := want[k]
		gv, present := got[k]
		path := prefix + k
		if wm, ok := wv.(map[string]any); ok {
			gm, _ := gv.(map[string]any)
			if gm == nil {
				gm = map[string]any{}
			}
			out = append(out, diffFields(path+".", wm, gm)...)
			continue
		}
		if present && matchValue(wv, gv) || !present && isZero(wv) {
			continue
		}
		out = append(out, fieldDiff{path: path, want: wv, got: gv, missing: !present})
	}
	return out
}

// assign matches expectations to distinct records: ok[i][j] tells whether
// expectation i matches record j. It returns, for each expectation, the
// record it is assigned (-1 for none), with as many assigned as possible
// (Kuhn's augmenting paths; test sizes are small).
func assign(ok [][]bool, records int) []int {
	owner := make([]int, records)
	for j := range owner {
		owner[j] = -1
	}
	var try func(i int, seen []bool) bool
	try = func(i int, seen []bool) bool {
		for j := 0; j < records; j++ {
			if !ok[i][j] || seen[j] {
				continue
			}
			seen[j] = true
			if owner[j] < 0 || try(owner[j], seen) {
				owner[j] = i
				return true
			}
		}
		return false
	}
	for i := range ok {
		try(i, make([]bool, records))
	}
	out := make([]int, len(ok))
	for i := range out {
		out[i] = -1
	}
	for j, i := range owner {
		if i >= 0 {
			out[i] = j
		}
	}
	return out
}

// compare matches expectations against records (each the decoded JSON of
// an action or a run) and describes every failure in the failure list.
// kind is "action" or "run"; render gives a record's short form.
func compare(kind string, exps []*Expected, recs []map[string]any, onlyListed bool, render func(map[string]any) string) []string {
	ok := make([][]bool, len(exps))
	for i, e := range exps {
		ok[i] = make([]bool, len(recs))
		for j, r := range recs {
			ok[i][j] = matchValue(e.Fields, r)
		}
	}
	got := assign(ok, len(recs))
	used := make([]bool, len(recs))
	for _, j := range got {
		if j >= 0 {
			used[j] = true
		}
	}
	var fails []string
	for i, e := range exps {
		if got[i] >= 0 {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "expected %s not produced (line %d):\n    %s\n", kind, e.Line, e.Text)
		switch best, diffs := nearest(e, recs); {
		case best < 0:
			fmt.Fprintf(&b, "  no %s was produced\n", kind)
		case len(diffs) == 0:
			fmt.Fprintf(&b, "  it matches only %ss that other expectations matched (each expected %s needs %s of its own):\n    %s\n", kind, kind, article(kind), render(recs[best]))
		default:
			fmt.Fprintf(&b, "  nearest %s: %s\n", kind, render(recs[best]))
			for _, d := range diffs {
				if d.missing {
					fmt.Fprintf(&b, "    %s: want %s, got nothing\n", d.path, compactJSON(d.want))
				} else {
					fmt.Fprintf(&b, "    %s: want %s, got %s\n", d.path, compactJSON(d.want), compactJSON(d.got))
				}
			}
		}
		fails = append(fails, b.String())
	}
	if onlyListed {
		for j, r := range recs {
			if !used[j] {
				fails = append(fails, fmt.Sprintf("unexpected %s:\n    %s\n", kind, render(r)))
			}
		}
	}
	return fails
}

func article(kind string) string {
	if strings.IndexByte("aeiou", kind[0]) >= 0 {
		return "an " + kind
	}
	return "a " + kind
}

// identity weighs the fields that say which record a record is: a record
// of the same automation and event, with another outcome, is nearer than
// one of another event with the same outcome.
var identity = map[string]int{"automation_id": 3, "event_id": 2, "record_id": 2, "flow.person_id": 2}

// nearest is the record that differs least from an expectation, and the
// fields it differs in; -1 when there are no records.
func nearest(e *Expected, recs []map[string]any) (int, []fieldDiff) {
	best, bestScore := -1, 0
	var bestDiffs []fieldDiff
	for j, r := range recs {
		d := diffFields("", e.Fields, r)
		score := 0
		for _, f := range d {
			score += max(identity[f.path], 1)
		}
		if best < 0 || score < bestScore {
			best, bestScore, bestDiffs = j, score, d
		}
	}
	return best, bestDiffs
}

// compactJSON is v as one line of JSON, without HTML escaping.
func compactJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
