package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/whenthen/whenthen/history/query"
	"github.com/whenthen/whenthen/history/store"
)

// funcs are the templates' functions. None returns template.HTML, CSS,
// JS or URL: everything they give is escaped by html/template for the
// context it lands in.
var funcs = template.FuncMap{
	// iso is a time for a datetime attribute; human the same in UTC for
	// people (app.js rewrites it in the viewer's zone).
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"human": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"hour":  func(t time.Time) string { return t.UTC().Format("Jan 2 15:04 UTC") },
	"ago":   ago,
	// holds is a *bool's value (false when nil): {{if .}} on a pointer
	// only asks whether it is set.
	"holds": func(b *bool) bool { return b != nil && *b },
	// path joins URL path segments, each escaped: path "w" ws "runs" id.
	"path": func(segs ...string) string {
		var b strings.Builder
		for _, s := range segs {
			b.WriteByte('/')
			b.WriteString(url.PathEscape(s))
		}
		return b.String()
	},
	"wspath": query.WorkspacePath,
	// qs builds a query string from pairs, leaving out empty values.
	"qs": func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		if len(v) == 0 {
			return ""
		}
		return "?" + v.Encode()
	},
	"jsonv": func(raw json.RawMessage) string {
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return string(raw)
		}
		return b.String()
	},
	"jsonany": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return ""
		}
		return string(b)
	},
	"boolv": func(b *bool) string {
		switch {
		case b == nil:
			return "error"
		case *b:
			return "true"
		}
		return "false"
	},
	"statusText": statusText,
	"f1":         func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"add":        func(a, b int) int { return a + b },
	"windowText": func(d time.Duration) string {
		if d == 24*time.Hour {
			return "24 hours"
		}
		if d%(24*time.Hour) == 0 {
			return fmt.Sprintf("%d days", d/(24*time.Hour))
		}
		return d.String()
	},
	"count": func(m map[string]int64, k string) int64 { return m[k] },
	// plural writes "1 run", "2 runs".
	"plural": func(n int64, word string) string {
		if n == 1 {
			return "1 " + word
		}
		return fmt.Sprintf("%d %ss", n, word)
	},
}

// statusText words a run's effective status.
func statusText(s string) string {
	switch s {
	case store.StatusDelivered:
		return "completed · delivered"
	case store.StatusCompleted:
		return "completed"
	case store.StatusDeliveryPending:
		return "completed · delivery pending"
	case store.StatusDeliveryFailed:
		return "completed · delivery failed"
	case store.StatusDeliverySkipped:
		return "completed · not delivered"
	}
	return s
}

// ago says how long before now t was, roughly.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
