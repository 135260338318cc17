package ingest

import (
	"strings"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/internal/jsonx"
)

// MaxEventIDBytes is the longest event id the envelope accepts.
const MaxEventIDBytes = 256

// EnvelopeDecoder decodes the JSON envelope of docs/events.md:
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

// envelopeKeys are the keys of the top-level object, in the order of the
// key constants.
var envelopeKeys = [][]byte{
	[]byte("id"), []byte("type"), []byte("time"), []byte("workspace"),
	[]byte("object"), []byte("record"), []byte("before"), []byte("partial"),
	[]byte("tracker"), []byte("account"), []byte("opportunity"), []byte("schedule"),
	[]byte("call"),
}

// Indexes of envelopeKeys.
const (
	keyID = iota
	keyType
	keyTime
	keyWorkspace
	keyObject
	keyRecord
	keyBefore
	keyPartial
	keyTracker
	keyAccount
	keyOpportunity
	keySchedule
	keyCall
	numEnvelopeKeys
)

// wire is the envelope's top-level members, found by precheck (which has
// rejected every key that encoding/json would match to an envelope key
// other than exactly). The scalars are built as encoding/json builds them
// into an any with UseNumber, so that a wrong type is reported by field.
// The members that should hold objects are left in the message, where p
// reads them when needed: records go straight from JSON to record values
// (crm.Object.ReadRecord) without a map between.
type wire struct {
	p         *jsonx.Parser // reading the message
	ID        scalar
	Type      scalar
	Time      scalar
	Workspace scalar
	Object    scalar
	Partial   scalar

	Record      member
	Before      member
	Tracker     member
	Account     member
	Opportunity member
	Schedule    member
	Call        member

	// unknown collects the record members that are no field, when
	// noteUnknown (DecoderOptions.OnUnknownFields is set).
	noteUnknown bool
	unknown     []crm.UnknownField
}

// member is where a member's value is in the message, and its kind
// (Invalid when there is no such member).
type member struct {
	off  int
	kind jsonx.Kind
}

// scalar is the value of a member: a string in s (not boxed in an any),
// anything else in v.
type scalar struct {
	s        string
	v        any
	isString bool
}

// val returns the value: nil for none or null, else a string, bool,
// json.Number, map[string]any or []any. The string is not copied to the
// heap for a callee that does not keep it.
func (x *scalar) val() any {
	if x.isString {
		return x.s
	}
	return x.v
}

var eventTypes = []string{
	engine.TypeRecordCreated, engine.TypeRecordUpdated, engine.TypeRecordDeleted,
	engine.TypeTrackerDetected, engine.TypeScheduleFired, engine.TypeCallProcessed,
}

// Decode decodes one envelope. key is ignored.
func (d *EnvelopeDecoder) Decode(key, value []byte) (*engine.Event, error) {
	var offs [numEnvelopeKeys]int
	present, derr := precheckAt(value, &d.opts, envelopeKeys, offs[:])
	if derr != nil {
		return nil, derr
	}
	p := jsonx.Get()
	defer jsonx.Put(p)
	w := wire{p: p, noteUnknown: d.opts.OnUnknownFields != nil}
	if err := w.read(value, present, &offs); err != nil {
		// precheck accepted the syntax; the parser disagreeing is
		// unexpected, but the message is still what is wrong.
		return nil, decodeErr(ReasonInvalidJSON, "%s", sanitize(err.Error()))
	}
	ev, derr := d.event(&w)
	if derr != nil {
		return nil, derr
	}
	if len(w.unknown) > 0 {
		d.opts.OnUnknownFields(ev, w.unknown)
	}
	return ev, nil
}

// read reads the top-level members of value, a message precheck
// accepted: present and offs tell which envelope keys it has and where
// their values are. The scalars are built; of the others, only the place
// and kind are kept.
func (w *wire) read(value []byte, present uint64, offs *[numEnvelopeKeys]int) error {
	p := w.p
	p.ResetValidUTF8(value) // checked by precheck
	for i, off := range offs {
		if present&(1<<i) == 0 {
			continue
		}
		p.Seek(off)
		x, m := w.field(i)
		kind := p.Kind()
		var err error
		switch {
		case m != nil:
			*m = member{off: off, kind: kind}
		case kind == jsonx.String:
			x.isString = true
			x.s, err = p.String()
		default:
			x.v, err = p.Value()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// field returns the field of w for envelopeKeys[i].
func (w *wire) field(i int) (*scalar, *member) {
	switch i {
	case keyID:
		return &w.ID, nil
	case keyType:
		return &w.Type, nil
	case keyTime:
		return &w.Time, nil
	case keyWorkspace:
		return &w.Workspace, nil
	case keyObject:
		return &w.Object, nil
	case keyRecord:
		return nil, &w.Record
	case keyBefore:
		return nil, &w.Before
	case keyPartial:
		return &w.Partial, nil
	case keyTracker:
		return nil, &w.Tracker
	case keyAccount:
		return nil, &w.Account
	case keyOpportunity:
		return nil, &w.Opportunity
	case keyCall:
		return nil, &w.Call
	}
	return nil, &w.Schedule
}

func (d *EnvelopeDecoder) event(w *wire) (*engine.Event, *DecodeError) {
	ev := &engine.Event{}
	var err *DecodeError
	if ev.ID, err = requiredString(w.ID.val(), "id"); err != nil {
		return nil, err
	}
	if len(ev.ID) > MaxEventIDBytes {
		return nil, decodeErr(ReasonInvalidField, "id: %d bytes is over the limit of %d", len(ev.ID), MaxEventIDBytes)
	}
	if ev.Type, err = requiredString(w.Type.val(), "type"); err != nil {
		return nil, err
	}
	if !knownType(ev.Type) {
		return nil, decodeErr(ReasonUnknownType, "type: not one of %s", strings.Join(eventTypes, ", "))
	}
	ts, err := requiredString(w.Time.val(), "time")
	if err != nil {
		return nil, err
	}
	if ev.Time, err = parseEventTime(ts); err != nil {
		return nil, err
	}
	if ev.Workspace, err = workspace(w.Workspace.val()); err != nil {
		return nil, err
	}
	schema, lim := d.opts.Schema, d.opts.Limits

	switch ev.Type {
	case engine.TypeTrackerDetected:
		if err := requiredMember(w.Tracker, "tracker"); err != nil {
			return nil, err
		}
		if ev.Tracker, err = w.trackerRecord(schema, lim); err != nil {
			return nil, err
		}
	case engine.TypeCallProcessed:
		if err := requiredMember(w.Call, "call"); err != nil {
			return nil, err
		}
		if ev.Call, err = w.mainRecord(schema.Call, w.Call, "call", lim); err != nil {
			return nil, err
		}
	default: // record.* and schedule.fired
		if ev.Type == engine.TypeScheduleFired {
			if err := requiredMember(w.Schedule, "schedule"); err != nil {
				return nil, err
			}
			if ev.Schedule, err = requiredString(w.value(w.Schedule, "name"), "schedule.name"); err != nil {
				return nil, err
			}
		}
		objName, err := requiredString(w.Object.val(), "object")
		if err != nil {
			return nil, err
		}
		obj, ok := schema.Object(objName)
		if !ok {
			return nil, decodeErr(ReasonUnknownObject, "object: not one of %s", strings.Join(crm.CRMObjects, ", "))
		}
		ev.Object = objName
		if err := requiredMember(w.Record, "record"); err != nil {
			return nil, err
		}
		if ev.Record, err = w.mainRecord(obj, w.Record, "record", lim); err != nil {
			return nil, err
		}
		if ev.Partial, err = optionalBool(w.Partial.val(), "partial"); err != nil {
			return nil, err
		}
		// before is read on updates and deletes; on a create (nothing was
		// before) and a schedule it is ignored.
		if ev.Type == engine.TypeRecordUpdated || ev.Type == engine.TypeRecordDeleted {
			if err := optionalMember(w.Before, "before"); err != nil {
				return nil, err
			}
			if w.Before.kind == jsonx.Object {
				if ev.Before, err = w.record(obj, w.Before, "before", lim); err != nil {
					return nil, err
				}
			}
		}
	}
	if ev.Account, err = w.related(schema, crm.ObjAccount, w.Account, lim); err != nil {
		return nil, err
	}
	if ev.Opportunity, err = w.related(schema, crm.ObjOpportunity, w.Opportunity, lim); err != nil {
		return nil, err
	}
	return ev, nil
}

// requiredMember checks that m is an object, as requiredObject does.
func requiredMember(m member, name string) *DecodeError {
	if m.kind == jsonx.Invalid || m.kind == jsonx.Null {
		return decodeErr(ReasonMissingField, "%s is missing", name)
	}
	return optionalMember(m, name)
}

// optionalMember checks that m is an object or null, or absent, as
// optionalObject does.
func optionalMember(m member, name string) *DecodeError {
	switch m.kind {
	case jsonx.Invalid, jsonx.Null, jsonx.Object:
		return nil
	}
	return decodeErr(ReasonInvalidField, "%s: want object, got %s", name, m.kind)
}

// value returns the value of the member key of object m, built; nil when
// there is none.
func (w *wire) value(m member, key string) any {
	if !w.find(m, key) {
		return nil
	}
	v, _ := w.p.Value()
	return v
}

// find moves w.p to the value of the member key of object m, reporting
// whether there is one.
func (w *wire) find(m member, key string) bool {
	p := w.p
	p.Seek(m.off)
	o := p.Object()
	for o.Next() {
		if string(o.Key()) == key {
			return true
		}
	}
	return false
}

// record reads the record of object obj in m, an object; at names m for
// messages.
func (w *wire) record(obj *crm.Object, m member, at string, lim crm.Limits) (*crm.Record, *DecodeError) {
	w.p.Seek(m.off)
	var unknown *[]crm.UnknownField // noted for DecoderOptions.OnUnknownFields only
	if w.noteUnknown {
		unknown = &w.unknown
	}
	r, err := obj.ReadRecordUnknown(w.p, lim, unknown)
	if perr := w.p.Err(); perr != nil {
		return nil, decodeErr(ReasonInvalidJSON, "%s", sanitize(perr.Error()))
	}
	if err != nil {
		return nil, recordError(at, err)
	}
	return r, nil
}

// mainRecord reads the record an event is about: it needs a non-empty
// string id.
func (w *wire) mainRecord(obj *crm.Object, m member, at string, lim crm.Limits) (*crm.Record, *DecodeError) {
	if !w.find(m, "id") || w.p.Kind() == jsonx.Null {
		return nil, decodeErr(ReasonMissingField, "%s.id is missing", at)
	}
	r, err := w.record(obj, m, at, lim)
	if err != nil {
		return nil, err
	}
	if r.ID() == "" {
		return nil, decodeErr(ReasonMissingField, "%s.id is empty", at)
	}
	return r, nil
}

// related reads an optional related record (account, opportunity); it
// need not have an id.
func (w *wire) related(s *crm.Schema, name string, m member, lim crm.Limits) (*crm.Record, *DecodeError) {
	if err := optionalMember(m, name); err != nil || m.kind != jsonx.Object {
		return nil, err
	}
	obj, _ := s.Object(name)
	return w.record(obj, m, name, lim)
}

// trackerRecord reads the tracker of a tracker.detected event: name is
// required and confidence, when present, lies in [0, 1].
func (w *wire) trackerRecord(s *crm.Schema, lim crm.Limits) (*crm.Record, *DecodeError) {
	if _, err := requiredString(w.value(w.Tracker, "name"), "tracker.name"); err != nil {
		return nil, err
	}
	r, err := w.record(s.Tracker, w.Tracker, "tracker", lim)
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

func knownType(t string) bool {
	switch t {
	case engine.TypeRecordCreated, engine.TypeRecordUpdated, engine.TypeRecordDeleted,
		engine.TypeTrackerDetected, engine.TypeScheduleFired, engine.TypeCallProcessed:
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

func newRecord(obj *crm.Object, m map[string]any, at string, lim crm.Limits) (*crm.Record, *DecodeError) {
	r, err := obj.NewRecord(m, lim)
	if err != nil {
		return nil, recordError(at, err)
	}
	return r, nil
}
