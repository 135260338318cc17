package engine

import (
	"math/rand"
	"slices"
	"testing"
)

// TestCandidateRunsMerge: candidates gathered from sorted runs come back
// in rule order, however many runs there are.
func TestCandidateRunsMerge(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, nruns := range []int{0, 1, 2, 3, 7, 16, 17, 40} {
		// Each candidate goes to one run; each run is in rule order.
		runs := make([][]*candidate, nruns)
		var all []*candidate
		for ord := range 200 {
			if nruns == 0 {
				break
			}
			c := &candidate{ord: ord}
			k := r.Intn(nruns)
			runs[k] = append(runs[k], c)
			all = append(all, c)
		}
		g := &group{}
		if nruns > 0 {
			g.scan = runs[0]
		}
		for _, run := range runs[min(1, nruns):] {
			// A field index whose lookup yields the run: one field whose
			// value is "k" for every candidate of the run.
			g.fields = append(g.fields, &fieldIndex{fields: nil, byOne: map[string][]*candidate{"k": run}})
		}
		got, _ := g.candidatesFromRuns(func(fi *fieldIndex, buf []*candidate) []*candidate { return append(buf, fi.byOne["k"]...) }, nil, nil)
		if !slices.EqualFunc(got, all, func(a, b *candidate) bool { return a == b }) {
			t.Fatalf("%d runs: out of order", nruns)
		}
	}
}
