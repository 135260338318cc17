package history

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's own; the store's, the consumers' (with a
// topic label) and the dead-letter writer's are registered beside them.
type metrics struct {
	deadLetters   *prometheus.CounterVec
	retries       *prometheus.CounterVec
	stalled       prometheus.Gauge
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	rulesLoaded   prometheus.Gauge
	reloads       *prometheus.CounterVec
	retentionRuns prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_history_dead_letters_total", Help: "Records that could not be decoded, dead-lettered, by topic and reason.",
		}, []string{"topic", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_history_retries_total", Help: "Batches written again after a failure, by topic and stage (write, dead_letter).",
		}, []string{"topic", "stage"}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_history_stalled_partitions", Help: "Partitions whose current batch is retrying a failed write.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_history_http_requests_total", Help: "HTTP requests, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "whenthen_history_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"route"}),
		rulesLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_history_rules_loaded", Help: "Automations in the live rule set the history lists and checks.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_history_rule_reloads_total", Help: "Rule set loads, the first included, by result.",
		}, []string{"result"}),
		retentionRuns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_history_retention_last_success_timestamp_seconds", Help: "When retention last finished deleting old history.",
		}),
	}
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.deadLetters, m.retries, m.stalled, m.requests, m.duration, m.rulesLoaded, m.reloads, m.retentionRuns} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("history: register metrics: %w", err)
		}
	}
	return m, nil
}
