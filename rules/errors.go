package rules

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in an automation file, at a position.
type Error struct {
	File         string
	Line, Col    int    // 1-based; 0 when unknown
	AutomationID string // "" outside an automation
	Msg          string
}

// Error formats as FILE:LINE:COL: automation ID: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.AutomationID != "" {
		b.WriteString("automation " + e.AutomationID + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every error found while loading, in file and position order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Sort orders the errors by file, line and column.
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
