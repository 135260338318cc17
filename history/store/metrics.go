package store

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's. Labels take fixed sets: table names and
// query names.
type metrics struct {
	rows          *prometheus.CounterVec
	errors        prometheus.Counter
	deleted       *prometheus.CounterVec
	writeDuration prometheus.Histogram
	query         *prometheus.HistogramVec
}

// Queries, the query label of whenthen_history_store_query_duration_seconds.
var queryNames = []string{"runs", "run", "automations", "hourly"}

func newMetrics(reg prometheus.Registerer, driver string) (*metrics, error) {
	constLabels := prometheus.Labels{"driver": driver}
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_history_rows_written_total", ConstLabels: constLabels,
			Help: "Rows inserted into the history database, by table (records already stored are not counted).",
		}, []string{"table"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenthen_history_db_errors_total", ConstLabels: constLabels,
			Help: "Failed database statements and transactions (writes are retried).",
		}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_history_rows_deleted_total", ConstLabels: constLabels,
			Help: "Rows deleted by retention, by table.",
		}, []string{"table"}),
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "whenthen_history_write_duration_seconds", ConstLabels: constLabels,
			Help:    "One batch written to the database in one transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		query: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "whenthen_history_store_query_duration_seconds", ConstLabels: constLabels,
			Help:    "Database time of one store query, by query.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"query"}),
	}
	for _, t := range []Table{TableRuns, TableActions, TableOutcomes} {
		m.rows.WithLabelValues(string(t))
	}
	for _, t := range []Table{TableRuns, TableActions, TableOutcomes, TableCounts, TableLatest} {
		m.deleted.WithLabelValues(string(t))
	}
	for _, q := range queryNames {
		m.query.WithLabelValues(q)
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.rows, m.errors, m.deleted, m.writeDuration, m.query}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("store: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(query string, start time.Time) {
	m.query.WithLabelValues(query).Observe(time.Since(start).Seconds())
}
