package writer

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the writer's metrics. Their only label, topic, takes the
// configured topic names (the outcomes topic's once it is written to).
type metrics struct {
	produced *prometheus.CounterVec
	errors   *prometheus.CounterVec
	retries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics creates the writer metrics, sets every series of topics to
// zero, and registers them on reg; a nil reg registers nothing.
func newMetrics(reg prometheus.Registerer, topics ...string) (*metrics, error) {
	m := &metrics{
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_produced_messages_total",
			Help: "Messages written to Kafka and acknowledged by all in-sync replicas.",
		}, []string{"topic"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_produce_errors_total",
			Help: "Writes to Kafka that failed, in whole or in part (each is retried).",
		}, []string{"topic"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_produce_retries_total",
			Help: "Writes to Kafka repeated after a failed one, with the messages not acknowledged.",
		}, []string{"topic"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "whenthen_produce_duration_seconds",
			Help:    "Time from handing messages to the producer until Kafka acknowledged all of them or the producer gave up, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15), // 1ms to 16s
		}, []string{"topic"}),
	}
	for _, t := range topics {
		m.produced.WithLabelValues(t)
		m.errors.WithLabelValues(t)
		m.retries.WithLabelValues(t)
		m.duration.WithLabelValues(t)
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.produced, m.errors, m.retries, m.duration}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("writer: register metrics (a writer is already registered on this registerer): %w", err)
			}
			return nil, fmt.Errorf("writer: register metrics: %w", err)
		}
	}
	return m, nil
}
