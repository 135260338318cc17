package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/whenthen/whenthen/actions"
)

// metrics are the engine's Prometheus metrics. Labels come from small
// fixed sets (outcome, reason, trigger, type), never ids.
type metrics struct {
	events        *prometheus.CounterVec
	byType        [len(eventTypes)]prometheus.Counter // events, resolved for the known types
	evaluated     prometheus.Counter
	matched       prometheus.Counter
	runs          *prometheus.CounterVec
	actions       *prometheus.CounterVec
	dedupHits     *prometheus.CounterVec
	evalErrors    prometheus.Counter
	evalDuration  prometheus.Histogram
	batchDuration prometheus.Histogram
	timers        *prometheus.CounterVec
	stale         prometheus.Counter
	storeErrors   *prometheus.CounterVec
	rules         prometheus.Gauge
	cacheHits     prometheus.Counter
	cacheMisses   prometheus.Counter
	walkRecords   *prometheus.CounterVec
	walksDone     *prometheus.CounterVec
	tickLate      prometheus.Histogram
}

// Walk kinds, the values of the kind label.
const (
	walkTick  = "tick"
	walkRearm = "rearm"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_engine_events_total", Help: "Events processed by the engine, by event type.",
		}, []string{"type"}),
		evaluated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_automations_evaluated_total", Help: "Candidate automations considered for an event or timer.",
		}),
		matched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_automations_matched_total", Help: "Automations whose trigger and condition matched.",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_runs_total", Help: "Run-history records, by outcome and reason.",
		}, []string{"outcome", "reason"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_actions_total", Help: "Action records emitted, by action type.",
		}, []string{"type"}),
		dedupHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_dedup_hits_total", Help: "Actions not emitted because dedup state refused them, by reason.",
		}, []string{"reason"}),
		evalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_eval_errors_total", Help: "CEL evaluations that failed (cost limit, overflow, bad types).",
		}),
		evalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "whenthen_eval_duration_seconds", Help: "Time to evaluate one event against its candidate automations.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "whenthen_engine_batch_duration_seconds", Help: "Time to process one batch of events, state round trips included.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
		}),
		timers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_timers_total", Help: "Date timer operations, by operation (armed, cancelled, fired, dropped).",
		}, []string{"op"}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_stale_events_total", Help: "Record events older than the stored state of their record, not applied.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_redis_errors_total", Help: "Failed Redis round trips, by operation.",
		}, []string{"op"}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whenthen_rules_loaded", Help: "Enabled automations in the live rule set.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_state_cache_hits_total", Help: "Record snapshots read from the partition's state cache instead of Redis.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_state_cache_misses_total", Help: "Record snapshots a partition's state cache did not hold, read from Redis.",
		}),
		walkRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_walk_records_total",
			Help: "Known records walked, by kind (tick: a built-in schedule's tick evaluated them; rearm: their date timers were re-armed after the date automations changed).",
		}, []string{"kind"}),
		walksDone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_walks_completed_total", Help: "Walks over the known records of an object completed, by kind (tick, rearm).",
		}, []string{"kind"}),
		tickLate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "whenthen_schedule_tick_delay_seconds", Help: "How long after its time a built-in schedule's tick started its walk.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 12),
		}),
	}
	for _, k := range []string{walkTick, walkRearm} {
		m.walkRecords.WithLabelValues(k)
		m.walksDone.WithLabelValues(k)
	}
	// The label sets alerts and dashboards read exist from the start, at
	// 0, so that a first error is an increase (deploy/).
	for _, op := range []string{"armed", "cancelled", "fired", "dropped"} {
		m.timers.WithLabelValues(op)
	}
	for _, op := range []string{"load_state", "claim", "confirm", "save_state", "ack_timers", "claim_timers", "walks", "known_records"} {
		m.storeErrors.WithLabelValues(op)
	}
	for _, t := range []string{actions.TypeBrief, actions.TypeFlow} {
		m.actions.WithLabelValues(t)
	}
	for _, r := range []string{actions.ReasonDuplicate, actions.ReasonCooldown, actions.ReasonAlreadyEnrolled} {
		m.dedupHits.WithLabelValues(r)
	}
	for i, t := range eventTypes {
		m.byType[i] = m.events.WithLabelValues(t)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.events, m.evaluated, m.matched, m.runs, m.actions, m.dedupHits, m.evalErrors,
			m.evalDuration, m.batchDuration, m.timers, m.stale, m.storeErrors, m.rules, m.cacheHits, m.cacheMisses, m.walkRecords, m.walksDone, m.tickLate} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register engine metrics: %w", err)
			}
		}
	}
	return m, nil
}

// eventTypes are the event types the engine counts without a label lookup.
var eventTypes = [...]string{TypeRecordCreated, TypeRecordUpdated, TypeRecordDeleted, TypeTrackerDetected, TypeScheduleFired, TypeCallProcessed}

// event counts one event of type typ.
func (m *metrics) event(typ string) {
	for i, t := range eventTypes {
		if t == typ {
			m.byType[i].Inc()
			return
		}
	}
	m.events.WithLabelValues(typ).Inc()
}
