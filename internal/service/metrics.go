package service

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's own metrics; the engine, writer, consumer
// and pipeline register theirs on the same registry.
type metrics struct {
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
	timerErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_rule_reloads_total", Help: "Rule set loads, the first included, by result (success or failure).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_rule_reload_last_success_timestamp_seconds", Help: "When the live rule set was loaded, as a Unix time.",
		}),
		timerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_timer_loop_errors_total", Help: "Failed steps of the date timer loop (each is retried), by stage.",
		}, []string{"stage"}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	for _, s := range []string{"fire", "publish", "commit"} {
		m.timerErrors.WithLabelValues(s)
	}
	for _, c := range []prometheus.Collector{m.reloads, m.lastReload, m.timerErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("service: register metrics: %w", err)
		}
	}
	return m, nil
}
