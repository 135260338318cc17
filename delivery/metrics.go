package delivery

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/whenthen/whenthen/actions"
)

// metrics are the deliverer's own metrics (the consumer and the writer
// register theirs on the same registry). Labels: destination takes the
// configured destination names, status and reason the outcome's (small
// fixed sets), result, op and step fixed sets; never an action or record
// id.
type metrics struct {
	deliveries      *prometheus.CounterVec   // destination, status, reason
	attempts        *prometheus.CounterVec   // destination, result
	retries         *prometheus.CounterVec   // destination
	attemptDuration *prometheus.HistogramVec // destination
	latency         *prometheus.HistogramVec // destination
	pending         *prometheus.GaugeVec     // destination
	oldest          *prometheus.GaugeVec     // destination
	inflight        *prometheus.GaugeVec     // destination
	actions         *prometheus.CounterVec   // result
	redisErrors     *prometheus.CounterVec   // op
	kafkaErrors     *prometheus.CounterVec   // op
	reloads         *prometheus.CounterVec   // result
	lastReload      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	byDest := []string{"destination"}
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "whenthen_deliveries_total",
			Help: "Final outcomes of deliveries, by destination, status (delivered, failed, skipped, dry_run) and reason."},
			[]string{"destination", "status", "reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "whenthen_delivery_attempts_total",
			Help: "Attempts made, by destination and result (ok, retryable_error, permanent_error)."}, []string{"destination", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "whenthen_delivery_retries_total",
			Help: "Deliveries put back in their destination's queue for a later attempt."}, byDest),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "whenthen_delivery_attempt_duration_seconds",
			Help: "One attempt: the call to the destination (and writing a brief's text on the first).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, byDest),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "whenthen_delivery_latency_seconds",
			Help: "From the action's fired_at to its final outcome, retries included.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 22)}, byDest),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "whenthen_delivery_pending",
			Help: "Deliveries scheduled and not final, in the destination's Redis queue (shared by all instances)."}, byDest),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "whenthen_delivery_oldest_pending_seconds",
			Help: "Age of the oldest delivery not final, from when it was scheduled; 0 when none."}, byDest),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "whenthen_delivery_inflight",
			Help: "Deliveries this instance has claimed and not settled."}, byDest),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "whenthen_delivery_actions_total",
			Help: "Action records consumed, by result: scheduled (for at least one destination), no_destination, invalid (dead-lettered)."}, []string{"result"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "whenthen_delivery_redis_errors_total",
			Help: "Failed Redis steps (each is retried), by op."}, []string{"op"}),
		kafkaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "whenthen_delivery_kafka_errors_total",
			Help: "Failed writes of outcomes and dead letters (each is retried), by op."}, []string{"op"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "whenthen_delivery_config_reloads_total",
			Help: "Loads of the delivery config, the first included, by result (success, failure)."}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{Name: "whenthen_delivery_config_last_success_timestamp_seconds",
			Help: "When the live delivery config was loaded, as a Unix time."}),
	}
	for _, r := range []string{"scheduled", "no_destination", "invalid"} {
		m.actions.WithLabelValues(r)
	}
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	// The ops that fail (dispatcher.go, handler.go, service.go), at 0 from
	// the start for the alerts (deploy/).
	for _, op := range []string{"claim", "enqueue", "settle", "finish", "stats"} {
		m.redisErrors.WithLabelValues(op)
	}
	for _, op := range []string{"outcomes", "dead_letter"} {
		m.kafkaErrors.WithLabelValues(op)
	}
	cs := []prometheus.Collector{m.deliveries, m.attempts, m.retries, m.attemptDuration, m.latency, m.pending, m.oldest,
		m.inflight, m.actions, m.redisErrors, m.kafkaErrors, m.reloads, m.lastReload}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("delivery: register metrics: %w", err)
		}
	}
	return m, nil
}

// destMetrics are one destination's series.
type destMetrics struct {
	attempts        *prometheus.CounterVec
	retries         prometheus.Counter
	attemptDuration prometheus.Observer
	latency         prometheus.Observer
	inflight        prometheus.Gauge
}

func (m *metrics) forDest(name string) *destMetrics {
	for _, r := range []string{"ok", "retryable_error", "permanent_error"} {
		m.attempts.WithLabelValues(name, r)
	}
	m.pending.WithLabelValues(name)
	m.oldest.WithLabelValues(name)
	// At 0 from the start, so that the first failure is an increase the
	// delivery alert sees (deploy/).
	m.deliveries.WithLabelValues(name, actions.StatusDelivered, "")
	for _, r := range []string{ReasonRejected, ReasonExpired, ReasonInvalid} {
		m.deliveries.WithLabelValues(name, actions.StatusFailed, r)
	}
	return &destMetrics{
		attempts:        m.attempts.MustCurryWith(prometheus.Labels{"destination": name}),
		retries:         m.retries.WithLabelValues(name),
		attemptDuration: m.attemptDuration.WithLabelValues(name),
		latency:         m.latency.WithLabelValues(name),
		inflight:        m.inflight.WithLabelValues(name),
	}
}

// forget drops the gauges of a destination no longer configured.
func (m *metrics) forget(name string) {
	m.pending.DeleteLabelValues(name)
	m.oldest.DeleteLabelValues(name)
	m.inflight.DeleteLabelValues(name)
}
