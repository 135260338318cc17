package ingest

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/internal/jsonx"
)

// Record fields an event carries that the schema does not declare are
// dropped by the decoders (docs/schema.md): a custom field must be
// declared to be kept. Dropped silently, a field the schema misses, or
// one whose name the CRM changed, would go unnoticed; the decoders
// report them instead (DecoderOptions.OnUnknownFields), and the service
// counts them with UnknownFieldMetrics.

// Label values of whenthen_unknown_fields_total's field beyond the
// names it keeps.
const (
	// MaxUnknownFieldNames is how many distinct field names of one object
	// get a label value of their own.
	MaxUnknownFieldNames = 100
	// UnknownFieldOther is the field label of the names past
	// MaxUnknownFieldNames, and of names that are not identifiers
	// ([A-Za-z0-9_$-]{1,64}), which are never label values.
	UnknownFieldOther = "_other"
)

// UnknownFieldMetrics counts the unknown record fields of decoded
// events: whenthen_unknown_fields_total{object, field}, incremented once
// per event for each object and field. The object label is one of the
// schema's types; the field label is the field's name for the first
// MaxUnknownFieldNames names of each object, then UnknownFieldOther, so
// the number of series stays bounded whatever the events hold. It is
// safe for concurrent use.
type UnknownFieldMetrics struct {
	total *prometheus.CounterVec
	mu    sync.Mutex
	names map[string]map[string]bool // object → the field names with a label value
}

// NewUnknownFieldMetrics registers whenthen_unknown_fields_total on reg
// (none when reg is nil).
func NewUnknownFieldMetrics(reg prometheus.Registerer) (*UnknownFieldMetrics, error) {
	m := &UnknownFieldMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenthen_unknown_fields_total",
			Help: "Decoded events carrying a record field the schema does not declare (dropped), by object and field; field=\"_other\" past the first 100 names of an object.",
		}, []string{"object", "field"}),
		names: map[string]map[string]bool{},
	}
	if reg != nil {
		if err := reg.Register(m.total); err != nil {
			return nil, fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	return m, nil
}

// Observe counts the unknown fields of one event; it is a
// DecoderOptions.OnUnknownFields.
func (m *UnknownFieldMetrics) Observe(_ *engine.Event, fields []crm.UnknownField) {
	for _, f := range fields {
		m.total.WithLabelValues(f.Object, m.label(f)).Inc()
	}
}

// label is the field label value of f.
func (m *UnknownFieldMetrics) label(f crm.UnknownField) string {
	if !jsonx.IsName([]byte(f.Field)) {
		return UnknownFieldOther
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	names := m.names[f.Object]
	if names[f.Field] {
		return f.Field
	}
	if len(names) >= MaxUnknownFieldNames {
		return UnknownFieldOther
	}
	if names == nil {
		names = map[string]bool{}
		m.names[f.Object] = names
	}
	names[f.Field] = true
	return f.Field
}

// FieldName is a member name as messages and labels may show it: itself
// when it is an identifier ([A-Za-z0-9_$-]{1,64}), else "?" (a name that
// is not one may be data).
func FieldName(name string) string {
	if jsonx.IsName([]byte(name)) {
		return name
	}
	return "?"
}
