package crm

import (
	"encoding/json"
	"sort"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// minValueBytes is the smallest budget AppendValue takes: room for a
// shortened string or an empty container.
const minValueBytes = 16

// AppendValue appends the JSON of a field value, as AppendJSON writes it,
// to dst, in at most limit bytes (at least 16): a longer string is cut at
// a rune boundary and ends with "…", a longer list keeps its first
// elements and a longer map the entries that fit, in key order. truncated
// tells whether anything was cut.
func AppendValue(dst []byte, v ref.Val, limit int) (out []byte, truncated bool, err error) {
	limit = max(limit, minValueBytes)
	start := len(dst)
	if dst, err = appendValue(dst, v); err != nil || len(dst)-start <= limit {
		return dst, false, err
	}
	dst = dst[:start]
	switch x := v.(type) {
	case types.String:
		return appendCutString(dst, string(x), limit), true, nil
	}
	switch x := v.Value().(type) {
	case []string:
		return appendCutList(dst, len(x), limit, func(d []byte, i int) ([]byte, error) { return appendString(d, x[i]), nil })
	case []ref.Val:
		return appendCutList(dst, len(x), limit, func(d []byte, i int) ([]byte, error) { return appendValue(d, x[i]) })
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, '{')
		for _, k := range keys {
			n := len(dst)
			if n > start+1 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			b, err := json.Marshal(x[k])
			if err != nil {
				return nil, false, err
			}
			dst = append(dst, b...)
			if len(dst)-start+1 > limit {
				dst = dst[:n] // left out; a later, shorter entry may fit
			}
		}
		return append(dst, '}'), true, nil
	}
	// Other values (numbers, timestamps, records) are short; a record in a
	// list is cut with its list.
	return append(dst, "null"...), true, nil
}

func appendCutList(dst []byte, n, limit int, elem func([]byte, int) ([]byte, error)) ([]byte, bool, error) {
	start := len(dst)
	dst = append(dst, '[')
	for i := 0; i < n; i++ {
		m := len(dst)
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = elem(dst, i); err != nil {
			return nil, false, err
		}
		if len(dst)-start+1 > limit {
			dst = dst[:m]
			break
		}
	}
	return append(dst, ']'), true, nil
}

// appendCutString appends s, shortened until its JSON with the "…" mark
// fits in limit bytes.
func appendCutString(dst []byte, s string, limit int) []byte {
	const mark = "…"
	start := len(dst)
	n := min(len(s), limit)
	for {
		for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		dst = appendString(dst[:start], s[:n]+mark)
		if len(dst)-start <= limit || n == 0 {
			return dst
		}
		// Escapes make the JSON longer than the text: cut by the excess.
		n -= min(n, len(dst)-start-limit)
	}
}
