package testenv

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric returns the value of the first series of the metric name that g
// gathers whose labels include each name and value of labels, given in
// pairs ("destination", "slow", ...): a counter's or gauge's value, or a
// histogram's sample count. It fails the test when no series matches, so
// that a misspelt name or label cannot pass as a zero.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("testenv.Metric(%s): labels come in name, value pairs: %q", name, labels)
		return 0
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
						break
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.GetUntyped() != nil:
				return m.GetUntyped().GetValue()
			}
		}
	}
	var sel []string
	for i := 0; i+1 < len(labels); i += 2 {
		sel = append(sel, labels[i]+"="+`"`+labels[i+1]+`"`)
	}
	t.Fatalf("no series %s{%s}", name, strings.Join(sel, ","))
	return 0
}
