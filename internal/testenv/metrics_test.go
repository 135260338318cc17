package testenv

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// fatals records what a helper reports instead of ending the test.
type fatals struct {
	testing.TB
	msgs []string
}

func (f *fatals) Helper() {}
func (f *fatals) Fatalf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func TestMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"a", "b"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"}, []string{"topic"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("x", "1").Add(2)
	c.WithLabelValues("x", "2").Add(5)
	g.Set(-3)
	h.WithLabelValues("t").Observe(1)
	h.WithLabelValues("t").Observe(2)

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"c_total", nil, 2}, // the first series
		{"c_total", []string{"b", "2"}, 5},
		{"c_total", []string{"a", "x", "b", "2"}, 5},
		{"g", nil, -3},
		{"h_seconds", []string{"topic", "t"}, 2},
	} {
		if got := Metric(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("Metric(%s, %q) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	for _, tc := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"c_totl", nil, "no series c_totl{}"},
		{"c_total", []string{"b", "3"}, `no series c_total{b="3"}`},
		{"c_total", []string{"b"}, "pairs"},
	} {
		f := &fatals{TB: t}
		if got := Metric(f, reg, tc.name, tc.labels...); got != 0 || len(f.msgs) == 0 || !strings.Contains(f.msgs[0], tc.want) {
			t.Errorf("Metric(%s, %q) = %v with %q, want a failure with %q", tc.name, tc.labels, got, f.msgs, tc.want)
		}
	}
}
