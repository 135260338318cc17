package web

import (
	"time"

	"github.com/whenthen/whenthen/history/store"
)

// chart is a stacked bar chart of runs per hour by outcome, drawn as an
// inline SVG by the templates from these numbers (no markup is built
// here).
type chart struct {
	W, H       int
	Bars       []bar
	Max        int64
	Total      int64
	Start, End time.Time
}

type bar struct {
	X, W float64
	Hour time.Time
	Segs []seg
	Sum  int64
}

type seg struct {
	Y, H    float64
	Outcome string
	Runs    int64
}

// chartOrder stacks outcomes from the bottom.
var chartOrder = []string{"completed", "skipped", "error"}

// newChart draws buckets over the window ending at now's hour: one bar
// an hour, the last one the hour now is in.
func newChart(buckets []store.Bucket, now time.Time, window time.Duration, w, h int) *chart {
	n := int(window / time.Hour)
	last := now.UTC().Truncate(time.Hour)
	first := last.Add(-time.Duration(n-1) * time.Hour)
	c := &chart{W: w, H: h, Start: first, End: last.Add(time.Hour)}
	counts := make([]map[string]int64, n)
	for _, b := range buckets {
		i := int(b.Hour.Sub(first) / time.Hour)
		if i < 0 || i >= n {
			continue
		}
		if counts[i] == nil {
			counts[i] = map[string]int64{}
		}
		counts[i][b.Outcome] += b.Runs
	}
	for _, m := range counts {
		var s int64
		for _, v := range m {
			s += v
		}
		c.Max = max(c.Max, s)
		c.Total += s
	}
	slot := float64(w) / float64(n)
	gap := min(slot*0.2, 2)
	for i, m := range counts {
		b := bar{X: float64(i) * slot, W: slot - gap, Hour: first.Add(time.Duration(i) * time.Hour)}
		y := float64(h)
		for _, o := range chartOrder {
			if m[o] == 0 || c.Max == 0 {
				continue
			}
			sh := float64(m[o]) / float64(c.Max) * float64(h)
			y -= sh
			b.Segs = append(b.Segs, seg{Y: y, H: sh, Outcome: o, Runs: m[o]})
			b.Sum += m[o]
		}
		for o, v := range m { // an outcome the page does not know
			known := false
			for _, k := range chartOrder {
				known = known || k == o
			}
			if !known && c.Max > 0 {
				sh := float64(v) / float64(c.Max) * float64(h)
				y -= sh
				b.Segs = append(b.Segs, seg{Y: y, H: sh, Outcome: "other", Runs: v})
				b.Sum += v
			}
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}
