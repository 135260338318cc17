package service

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's own metrics; the engine, writer, consumer
// and pipeline (the timer loop's included) register theirs on the same
// registry.
type metrics struct {
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
	lastFailure prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_rule_reloads_total", Help: "Rule set loads, the first included, by result (success or failure).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_rule_reload_last_success_timestamp_seconds", Help: "When the live rule set was loaded, as a Unix time.",
		}),
		lastFailure: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_rule_reload_last_failure_timestamp_seconds", Help: "When a rule set last failed to load, as a Unix time (0: never since the start).",
		}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	for _, c := range []prometheus.Collector{m.reloads, m.lastReload, m.lastFailure} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("service: register metrics: %w", err)
		}
	}
	return m, nil
}
