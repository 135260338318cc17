// Package suggest finds, among known names, the one a mistyped name most
// likely meant, for the "did you mean" of error messages: a workspace
// name, a picklist value.
package suggest

import (
	"strings"
	"unicode"
)

// Nearest returns the candidate s most likely stands for, and false when
// none is close enough or s is itself a candidate. A candidate equal to s
// but for case, spaces and punctuation wins ("closed-won" for "Closed
// Won"); else the one fewest edits away (an edit inserts, deletes or
// replaces a character, or swaps two neighbours; case is ignored), when
// it is at most a quarter of s's length away (at least one edit, at most
// three). Ties go to the earlier candidate.
func Nearest(s string, candidates []string) (string, bool) {
	for _, c := range candidates {
		if c == s {
			return "", false
		}
	}
	fs := fold(s)
	if fs != "" {
		for _, c := range candidates {
			if fold(c) == fs {
				return c, true
			}
		}
	}
	ls := []rune(strings.ToLower(s))
	limit := min(max(1, len(ls)/4), 3)
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := distance(ls, []rune(strings.ToLower(c)), bestD); d < bestD {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

// fold keeps the letters and digits of s, in lower case.
func fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// distance is the optimal string alignment distance between a and b
// (Levenshtein with swaps of neighbours), or bound when it is bound or
// more.
func distance(a, b []rune, bound int) int {
	if d := len(a) - len(b); d >= bound || -d >= bound {
		return bound
	}
	// Three rows of the dynamic programme: i-2, i-1 and i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= bound {
			return bound
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], bound)
}
