package authoring

import (
	"fmt"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/ingest"
)

// UnknownFieldNote is a record field the events carry that the schema
// does not declare, which the decoder drops: the field, and where it was
// first seen. It names the field and the event, never the value.
type UnknownFieldNote struct {
	Object string `json:"object"`
	// Field is the name, or "?" for one that is not an identifier
	// (ingest.FieldName).
	Field   string `json:"field"`
	EventID string `json:"event_id"`
	// Where locates the event: FILE:LINE.
	Where string `json:"where,omitempty"`
}

// String is the warning: "opportunity.stge is not a field of the schema:
// dropped (first in event e2, tests/x.yaml:12)".
func (n UnknownFieldNote) String() string {
	s := fmt.Sprintf("%s.%s is not a field of the schema: dropped (first in event %s", n.Object, n.Field, n.EventID)
	if n.Where != "" {
		s += ", " + n.Where
	}
	return s + ")"
}

// UnknownFields keeps, for each object and field the schema does not
// declare, where it was first seen. Its Observe is a decoder's
// ingest.DecoderOptions.OnUnknownFields; it is not safe for concurrent
// use, as the offline tools decode one event at a time.
type UnknownFields struct {
	// OnFirst, if set, is called with each field when it is first seen.
	OnFirst func(UnknownFieldNote)
	// Where locates the event being decoded, for the notes: FILE:LINE.
	Where string
	seen  map[crm.UnknownField]bool
	notes []UnknownFieldNote
}

// Observe notes the fields ev carries that the schema does not declare.
func (u *UnknownFields) Observe(ev *engine.Event, fields []crm.UnknownField) {
	for _, f := range fields {
		f.Field = ingest.FieldName(f.Field)
		if u.seen[f] {
			continue
		}
		if u.seen == nil {
			u.seen = map[crm.UnknownField]bool{}
		}
		u.seen[f] = true
		n := UnknownFieldNote{Object: f.Object, Field: f.Field, EventID: ev.ID, Where: u.Where}
		u.notes = append(u.notes, n)
		if u.OnFirst != nil {
			u.OnFirst(n)
		}
	}
}

// Notes are the fields seen, in the order they were first seen.
func (u *UnknownFields) Notes() []UnknownFieldNote { return u.notes }
