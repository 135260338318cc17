package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/rules"
)

// MaxEventIDBytes is the longest event id the envelope accepts.
const MaxEventIDBytes = 256

// EnvelopeDecoder decodes the JSON envelope of SPEC section 2:
//
//	{"id": "evt-9f1c", "type": "record.updated", "time": "2026-11-24T10:00:00Z",
//	 "workspace": "acme", "object": "opportunity",
//	 "record": {"id": "006A1", "stage": "Closed Won"}, "before": {"stage": "Negotiation"},
//	 "partial": false}
//
// Keys are matched exactly; a key twice in any object, or a key of the
// top-level object differing only in case from an envelope key, is
// rejected. Unknown top-level keys are ignored, and null stands for an
// absent optional field. The message key is not read: it is a partitioning
// concern. docs/events.md lists every rule.
type EnvelopeDecoder struct {
	opts DecoderOptions
}

// NewEnvelopeDecoder returns a decoder of the JSON envelope.
func NewEnvelopeDecoder(opts DecoderOptions) (*EnvelopeDecoder, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &EnvelopeDecoder{opts: o}, nil
}

// envelopeKeys are the keys of the top-level object. Every field of wire
// is one of them.
var envelopeKeys = [][]byte{
	[]byte("id"), []byte("type"), []byte("time"), []byte("workspace"),
	[]byte("object"), []byte("record"), []byte("before"), []byte("partial"),
	[]byte("tracker"), []byte("account"), []byte("opportunity"), []byte("schedule"),
}

// wire is the envelope as decoded by encoding/json. encoding/json matches
// struct fields case-insensitively; the checker has rejected every key that
// would match one of these fields other than exactly, so the match is
// exact. Fields are any so that a wrong type is reported by field, not as
// an encoding/json error; objects decode as map[string]any with
// json.Number values.
type wire struct {
	ID          any `json:"id"`
	Type        any `json:"type"`
	Time        any `json:"time"`
	Workspace   any `json:"workspace"`
	Object      any `json:"object"`
	Record      any `json:"record"`
	Before      any `json:"before"`
	Partial     any `json:"partial"`
	Tracker     any `json:"tracker"`
	Account     any `json:"account"`
	Opportunity any `json:"opportunity"`
	Schedule    any `json:"schedule"`
}

var eventTypes = []string{
	engine.TypeRecordCreated, engine.TypeRecordUpdated, engine.TypeRecordDeleted,
	engine.TypeTrackerDetected, engine.TypeScheduleFired,
}

// Decode decodes one envelope. key is ignored.
func (d *EnvelopeDecoder) Decode(key, value []byte) (*engine.Event, error) {
	if _, err := precheck(value, &d.opts, envelopeKeys); err != nil {
		return nil, err
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		// The checker accepted the syntax; encoding/json disagreeing is
		// unexpected, but the message is still what is wrong.
		return nil, decodeErr(ReasonInvalidJSON, "%s", sanitize(err.Error()))
	}
	ev, err := d.event(&w)
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func (d *EnvelopeDecoder) event(w *wire) (*engine.Event, *DecodeError) {
	ev := &engine.Event{}
	var err *DecodeError
	if ev.ID, err = requiredString(w.ID, "id"); err != nil {
		return nil, err
	}
	if len(ev.ID) > MaxEventIDBytes {
		return nil, decodeErr(ReasonInvalidField, "id: %d bytes is over the limit of %d", len(ev.ID), MaxEventIDBytes)
	}
	if ev.Type, err = requiredString(w.Type, "type"); err != nil {
		return nil, err
	}
	if !knownType(ev.Type) {
		return nil, decodeErr(ReasonUnknownType, "type: not one of %s", strings.Join(eventTypes, ", "))
	}
	ts, err := requiredString(w.Time, "time")
	if err != nil {
		return nil, err
	}
	if ev.Time, err = parseEventTime(ts); err != nil {
		return nil, err
	}
	if ev.Workspace, err = workspace(w.Workspace); err != nil {
		return nil, err
	}
	schema, lim := d.opts.Schema, d.opts.Limits

	switch ev.Type {
	case engine.TypeTrackerDetected:
		tm, err := requiredObject(w.Tracker, "tracker")
		if err != nil {
			return nil, err
		}
		if ev.Tracker, err = trackerRecord(schema, tm, lim); err != nil {
			return nil, err
		}
	default: // record.* and schedule.fired
		if ev.Type == engine.TypeScheduleFired {
			sm, err := requiredObject(w.Schedule, "schedule")
			if err != nil {
				return nil, err
			}
			if ev.Schedule, err = requiredString(sm["name"], "schedule.name"); err != nil {
				return nil, err
			}
		}
		objName, err := requiredString(w.Object, "object")
		if err != nil {
			return nil, err
		}
		obj, ok := schema.Object(objName)
		if !ok {
			return nil, decodeErr(ReasonUnknownObject, "object: not one of %s", strings.Join(rules.CRMObjects, ", "))
		}
		ev.Object = objName
		rm, err := requiredObject(w.Record, "record")
		if err != nil {
			return nil, err
		}
		if ev.Record, err = mainRecord(obj, rm, "record", lim); err != nil {
			return nil, err
		}
		if ev.Partial, err = optionalBool(w.Partial, "partial"); err != nil {
			return nil, err
		}
		// before is read on updates and deletes; on a create (nothing was
		// before) and a schedule it is ignored.
		if ev.Type == engine.TypeRecordUpdated || ev.Type == engine.TypeRecordDeleted {
			bm, err := optionalObject(w.Before, "before")
			if err != nil {
				return nil, err
			}
			if bm != nil {
				if ev.Before, err = newRecord(obj, bm, "before", lim); err != nil {
					return nil, err
				}
			}
		}
	}
	if ev.Account, err = related(schema, rules.ObjAccount, w.Account, lim); err != nil {
		return nil, err
	}
	if ev.Opportunity, err = related(schema, rules.ObjOpportunity, w.Opportunity, lim); err != nil {
		return nil, err
	}
	return ev, nil
}

func knownType(t string) bool {
	switch t {
	case engine.TypeRecordCreated, engine.TypeRecordUpdated, engine.TypeRecordDeleted,
		engine.TypeTrackerDetected, engine.TypeScheduleFired:
		return true
	}
	return false
}

// parseEventTime reads the event time: an RFC 3339 timestamp.
func parseEventTime(s string) (time.Time, *DecodeError) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, decodeErr(ReasonInvalidField, "time: want an RFC 3339 timestamp")
	}
	return t, nil
}

// workspace reads the optional workspace: null, absent and "" are none.
func workspace(v any) (string, *DecodeError) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", decodeErr(ReasonInvalidField, "workspace: want string, got %s", jsonKind(v))
	}
	if s != "" && !validWorkspace(s) {
		return "", decodeErr(ReasonInvalidField, "workspace: want 1 to 128 of A-Z a-z 0-9 . _ -")
	}
	return s, nil
}

// requiredString reads a required string: absent, null and "" are missing.
func requiredString(v any, name string) (string, *DecodeError) {
	switch s := v.(type) {
	case nil:
		return "", decodeErr(ReasonMissingField, "%s is missing", name)
	case string:
		if s == "" {
			return "", decodeErr(ReasonMissingField, "%s is empty", name)
		}
		return s, nil
	}
	return "", decodeErr(ReasonInvalidField, "%s: want string, got %s", name, jsonKind(v))
}

func requiredObject(v any, name string) (map[string]any, *DecodeError) {
	if v == nil {
		return nil, decodeErr(ReasonMissingField, "%s is missing", name)
	}
	return optionalObject(v, name)
}

func optionalObject(v any, name string) (map[string]any, *DecodeError) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, decodeErr(ReasonInvalidField, "%s: want object, got %s", name, jsonKind(v))
	}
	return m, nil
}

func optionalBool(v any, name string) (bool, *DecodeError) {
	if v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, decodeErr(ReasonInvalidField, "%s: want bool, got %s", name, jsonKind(v))
	}
	return b, nil
}

func newRecord(obj *rules.Object, m map[string]any, at string, lim rules.Limits) (*rules.Record, *DecodeError) {
	r, err := obj.NewRecord(m, lim)
	if err != nil {
		return nil, recordError(at, err)
	}
	return r, nil
}

// mainRecord builds the record an event is about: it needs a non-empty
// string id.
func mainRecord(obj *rules.Object, m map[string]any, at string, lim rules.Limits) (*rules.Record, *DecodeError) {
	if id, ok := m["id"]; !ok || id == nil {
		return nil, decodeErr(ReasonMissingField, "%s.id is missing", at)
	}
	r, err := newRecord(obj, m, at, lim)
	if err != nil {
		return nil, err
	}
	if r.ID() == "" {
		return nil, decodeErr(ReasonMissingField, "%s.id is empty", at)
	}
	return r, nil
}

// related builds an optional related record (account, opportunity); it
// need not have an id.
func related(s *rules.Schema, name string, v any, lim rules.Limits) (*rules.Record, *DecodeError) {
	m, err := optionalObject(v, name)
	if err != nil || m == nil {
		return nil, err
	}
	obj, _ := s.Object(name)
	return newRecord(obj, m, name, lim)
}

// trackerRecord builds the tracker of a tracker.detected event: name is
// required and confidence, when present, lies in [0, 1].
func trackerRecord(s *rules.Schema, m map[string]any, lim rules.Limits) (*rules.Record, *DecodeError) {
	if _, err := requiredString(m["name"], "tracker.name"); err != nil {
		return nil, err
	}
	r, err := newRecord(s.Tracker, m, "tracker", lim)
	if err != nil {
		return nil, err
	}
	if f, ok := s.Tracker.Field("confidence"); ok {
		if c, ok := r.Get(f).(types.Double); ok && !(c >= 0 && c <= 1) {
			return nil, decodeErr(ReasonInvalidField, "tracker.confidence: want a number from 0 to 1")
		}
	}
	return r, nil
}
