package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/internal/jsonx"
)

// DebeziumOptions configures a DebeziumDecoder.
type DebeziumOptions struct {
	DecoderOptions
	// Tables maps the tables whose change events are read to CRM objects,
	// keyed by "schema.table" (Postgres, SQL Server), "db.table" (MySQL)
	// or the bare table name; the qualified keys are tried first. Events
	// of other tables are rejected with ReasonUnknownTable. Required.
	Tables map[string]TableMapping
	// UnavailableValue is the placeholder Debezium writes for a value it
	// does not have (a Postgres TOAST column left unchanged by an update);
	// such a column is left out of the record and the event is partial.
	// Default "__debezium_unavailable_value", Debezium's default.
	UnavailableValue string
}

// DefaultUnavailableValue is Debezium's default unavailable.value.placeholder.
const DefaultUnavailableValue = "__debezium_unavailable_value"

// TableMapping maps the rows of one table to records of one object.
type TableMapping struct {
	// Object is the CRM object of the rows: account, opportunity, lead or
	// contact. Required.
	Object string
	// IDColumn holds the record id; default "id". A numeric id becomes
	// its decimal text.
	IDColumn string
	// Workspace is the fixed workspace of the table's events; default none.
	Workspace string
	// WorkspaceColumn, instead of Workspace, names the column holding each
	// row's workspace. A row without a valid workspace there is rejected.
	WorkspaceColumn string
	// Columns renames columns to record fields (column → field); other
	// columns keep their names. Columns that are no field of Object are
	// dropped. A renamed field hides an unrenamed column of the same name.
	Columns map[string]string
	// TimeUnit is the unit of epoch numbers in timestamp fields when the
	// message carries no schema that names the column's logical type:
	// "ms" (default), "us", "ns" or "days".
	TimeUnit string
}

// DebeziumDecoder decodes Debezium change events written by Kafka
// Connect's JSON converter, with or without the schema/payload wrapper,
// and maps them onto the envelope: ops c (create) and r (snapshot read)
// are record.created, u is record.updated, d is record.deleted. See
// docs/events.md for the mapping, the event id and the time.
type DebeziumDecoder struct {
	opts        DecoderOptions
	tables      map[string]*table
	unavailable string
}

type table struct {
	obj             *crm.Object
	idColumn        string
	workspace       string
	workspaceColumn string
	rename          map[string]string // column → field
	hidden          map[string]bool   // fields that are the target of a rename
	unit            string
}

// NewDebeziumDecoder returns a decoder of Debezium change events.
func NewDebeziumDecoder(opts DebeziumOptions) (*DebeziumDecoder, error) {
	o, err := opts.DecoderOptions.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(opts.Tables) == 0 {
		return nil, errors.New("ingest: DebeziumOptions.Tables is empty")
	}
	d := &DebeziumDecoder{opts: o, tables: make(map[string]*table, len(opts.Tables)), unavailable: opts.UnavailableValue}
	if d.unavailable == "" {
		d.unavailable = DefaultUnavailableValue
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(opts.Tables)) {
		t, err := newTable(o.Schema, opts.Tables[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("ingest: table %s: %w", name, err))
			continue
		}
		d.tables[name] = t
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

func newTable(s *crm.Schema, m TableMapping) (*table, error) {
	obj, ok := s.Object(m.Object)
	if !ok {
		return nil, fmt.Errorf("object %q is not one of %s", m.Object, strings.Join(crm.CRMObjects, ", "))
	}
	t := &table{obj: obj, idColumn: m.IDColumn, workspace: m.Workspace, workspaceColumn: m.WorkspaceColumn,
		rename: map[string]string{}, hidden: map[string]bool{}, unit: m.TimeUnit}
	if t.idColumn == "" {
		t.idColumn = "id"
	}
	if t.unit == "" {
		t.unit = "ms"
	}
	var errs []error
	switch t.unit {
	case "ms", "us", "ns", "days":
	default:
		errs = append(errs, fmt.Errorf("TimeUnit %q is not one of ms, us, ns, days", m.TimeUnit))
	}
	if m.Workspace != "" && m.WorkspaceColumn != "" {
		errs = append(errs, errors.New("set Workspace or WorkspaceColumn, not both"))
	}
	if m.Workspace != "" && !validWorkspace(m.Workspace) {
		errs = append(errs, fmt.Errorf("workspace %q: want 1 to 128 of A-Z a-z 0-9 . _ -", m.Workspace))
	}
	for _, col := range slices.Sorted(maps.Keys(m.Columns)) {
		field := m.Columns[col]
		switch _, known := obj.Field(field); {
		case field == "id":
			errs = append(errs, fmt.Errorf("column %s: the id comes from IDColumn, not Columns", col))
		case !known:
			errs = append(errs, fmt.Errorf("column %s: %s has no field %q", col, obj.Name, field))
		case t.hidden[field]:
			errs = append(errs, fmt.Errorf("column %s: field %s is the target of another column", col, field))
		default:
			t.rename[col] = field
			t.hidden[field] = true
		}
	}
	return t, errors.Join(errs...)
}

// Debezium ops.
const (
	opCreate = "c"
	opRead   = "r"
	opUpdate = "u"
	opDelete = "d"
)

// dbzKeys are the top-level keys of a change event, wrapped or not. As in
// the envelope, a case variant of one of them is rejected, so that the
// case-insensitive struct decoding of dbzWire matches exactly.
var dbzKeys = [][]byte{
	[]byte("schema"), []byte("payload"), []byte("op"), []byte("before"),
	[]byte("after"), []byte("source"), []byte("ts_ms"),
}

const (
	dbzHasPayload = 1 << 1 // bits of dbzKeys
	dbzHasOp      = 1 << 2
)

// dbzWire is a change event's top-level members: the payload keys of an
// unwrapped event, or the schema and payload of a wrapped one, as
// encoding/json decodes them into a struct of these fields with UseNumber.
// The schema is decoded into connectSchema, reading only what columnTypes
// needs.
type dbzWire struct {
	Schema  *connectSchema `json:"schema"`
	Payload any            `json:"payload"`
	Op      any            `json:"op"`
	Before  any            `json:"before"`
	After   any            `json:"after"`
	Source  any            `json:"source"`
	TsMs    any            `json:"ts_ms"`
}

// connectSchema is a Kafka Connect schema, as the JSON converter writes it
// with schemas.enable.
type connectSchema struct {
	Field      string          `json:"field"`
	Name       string          `json:"name"`
	Parameters map[string]any  `json:"parameters"`
	Fields     []connectSchema `json:"fields"`
}

// Decode decodes one change event. key is read only for a delete whose
// before row is null, to find the record id.
func (d *DebeziumDecoder) Decode(key, value []byte) (*engine.Event, error) {
	present, derr := precheck(value, &d.opts, dbzKeys)
	if derr != nil {
		return nil, derr
	}
	var w dbzWire
	if err := w.read(value); err != nil {
		return nil, decodeErr(ReasonInvalidJSON, "%s", sanitize(err.Error()))
	}
	var p map[string]any
	var cols map[string]colType
	if present&dbzHasPayload != 0 && present&dbzHasOp == 0 {
		if w.Payload == nil {
			return nil, decodeErr(ReasonEmpty, "payload is null (tombstone)")
		}
		var ok bool
		if p, ok = w.Payload.(map[string]any); !ok {
			return nil, decodeErr(ReasonInvalidField, "payload: want object, got %s", jsonKind(w.Payload))
		}
		cols = w.Schema.columnTypes()
	} else {
		p = map[string]any{"op": w.Op, "before": w.Before, "after": w.After, "source": w.Source, "ts_ms": w.TsMs}
	}
	ev, derr := d.event(key, p, cols)
	if derr != nil {
		return nil, derr
	}
	return ev, nil
}

// read fills w from value, a message precheck accepted (precheck has
// rejected every top-level key that encoding/json would match to a field
// other than exactly). Members of other keys are skipped.
func (w *dbzWire) read(value []byte) error {
	p := jsonx.Get()
	defer jsonx.Put(p)
	p.ResetValidUTF8(value) // checked by precheck
	o := p.Object()
	for o.Next() {
		var v *any
		switch string(o.Key()) {
		case "schema":
			readSchema(p, &w.Schema)
			continue
		case "payload":
			v = &w.Payload
		case "op":
			v = &w.Op
		case "before":
			v = &w.Before
		case "after":
			v = &w.After
		case "source":
			v = &w.Source
		case "ts_ms":
			v = &w.TsMs
		default:
			continue
		}
		x, err := p.Value()
		if err != nil {
			return err
		}
		*v = x
	}
	return p.End()
}

// readSchema decodes the next value of p into *s as encoding/json decodes
// it into a *connectSchema, the errors of a value of the wrong type left
// out: Decode ignores a schema of an unexpected shape. The value is
// checked, but a syntax error is left in p.
func readSchema(p *jsonx.Parser, s **connectSchema) {
	switch p.Kind() {
	case jsonx.Null:
		*s = nil
	case jsonx.Object:
		if *s == nil {
			*s = new(connectSchema)
		}
		(*s).read(p)
		return
	default:
		// encoding/json allocates the struct before it finds the type
		// wrong.
		if *s == nil {
			*s = new(connectSchema)
		}
	}
	p.Skip()
}

// read decodes the object that is p's next value into s, as encoding/json
// does: a key matches a field exactly or else case-insensitively, members
// are decoded in order into what s already holds (so of two keys matching
// one field, the last wins, objects merge and arrays reuse elements), null
// clears the map and slice fields and leaves the others, and a value of
// the wrong type is skipped.
func (s *connectSchema) read(p *jsonx.Parser) {
	o := p.Object()
	for o.Next() {
		switch schemaField(o.Key()) {
		case "field":
			readSchemaString(p, &s.Field)
		case "name":
			readSchemaString(p, &s.Name)
		case "parameters":
			switch p.Kind() {
			case jsonx.Null:
				s.Parameters = nil
			case jsonx.Object:
				if s.Parameters == nil {
					s.Parameters = map[string]any{}
				}
				m := p.Object()
				for m.Next() {
					k := string(m.Key())
					v, err := p.Value()
					if err != nil {
						return
					}
					s.Parameters[k] = v
				}
			}
		case "fields":
			switch p.Kind() {
			case jsonx.Null:
				s.Fields = nil
			case jsonx.Array:
				s.readFields(p)
			}
		}
	}
}

// readFields decodes the array that is p's next value into s.Fields, as
// encoding/json decodes an array into a slice: into the elements the
// slice has, and up to its capacity, before growing it.
func (s *connectSchema) readFields(p *jsonx.Parser) {
	a := p.Array()
	i := 0
	for a.Next() {
		if i == cap(s.Fields) {
			s.Fields = append(s.Fields[:i], connectSchema{})
		}
		if i >= len(s.Fields) {
			s.Fields = s.Fields[:i+1]
		}
		if p.Kind() == jsonx.Object { // null and other types leave the element
			s.Fields[i].read(p)
		}
		i++
	}
	if i < len(s.Fields) {
		s.Fields = s.Fields[:i]
	}
	if i == 0 {
		s.Fields = []connectSchema{}
	}
}

func readSchemaString(p *jsonx.Parser, dst *string) {
	if p.Kind() == jsonx.String {
		if v, err := p.String(); err == nil {
			*dst = v
		}
	}
}

// schemaFields are the JSON keys of connectSchema's fields.
var schemaFields = []string{"field", "name", "parameters", "fields"}

// schemaField returns the field of connectSchema that key matches, as
// encoding/json matches them, or "".
func schemaField(key []byte) string {
	for _, f := range schemaFields {
		if string(key) == f {
			return f
		}
	}
	for _, f := range schemaFields {
		if bytes.EqualFold(key, []byte(f)) {
			return f
		}
	}
	return ""
}

// decodeObject decodes a message precheck accepted.
func decodeObject(b []byte) (map[string]any, *DecodeError) {
	p := jsonx.Get()
	defer jsonx.Put(p)
	p.ResetValidUTF8(b) // checked by precheck
	v, err := p.Value()
	if err == nil {
		err = p.End()
	}
	if err != nil {
		return nil, decodeErr(ReasonInvalidJSON, "%s", sanitize(err.Error()))
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, decodeErr(ReasonInvalidJSON, "message is not a JSON object")
	}
	return m, nil
}

// event maps the payload p of a change event; cols are the column types
// from its schema, if it has one.
func (d *DebeziumDecoder) event(key []byte, p map[string]any, cols map[string]colType) (*engine.Event, *DecodeError) {
	op, err := requiredString(p["op"], "op")
	if err != nil {
		return nil, err
	}
	ev := &engine.Event{}
	switch op {
	case opCreate, opRead:
		ev.Type = engine.TypeRecordCreated
	case opUpdate:
		ev.Type = engine.TypeRecordUpdated
	case opDelete:
		ev.Type = engine.TypeRecordDeleted
	default:
		return nil, decodeErr(ReasonUnknownType, "op: not one of c, r, u, d")
	}
	src, err := requiredObject(p["source"], "source")
	if err != nil {
		return nil, err
	}
	tname, err := requiredString(src["table"], "source.table")
	if err != nil {
		return nil, err
	}
	qualified := tname
	var t *table
	for _, ns := range []string{"schema", "db"} {
		if s, ok := src[ns].(string); ok && s != "" {
			if qualified == tname {
				qualified = s + "." + tname
			}
			if t == nil {
				t = d.tables[s+"."+tname]
			}
		}
	}
	if t == nil {
		t = d.tables[tname]
	}
	if t == nil {
		return nil, decodeErr(ReasonUnknownTable, "source.table: no table mapping for the event's table")
	}
	ev.Object = t.obj.Name
	if ev.Time, err = eventTime(p, src); err != nil {
		return nil, err
	}
	before, err := optionalObject(p["before"], "before")
	if err != nil {
		return nil, err
	}
	after, err := optionalObject(p["after"], "after")
	if err != nil {
		return nil, err
	}
	lim := d.opts.Limits

	row, at := after, "after"
	if op == opDelete {
		row, at = before, "before"
		if row == nil {
			if row = d.keyRow(key, t); row == nil {
				return nil, decodeErr(ReasonMissingField, "before is missing, and the message key holds no id")
			}
			at = "key"
		}
	} else if row == nil {
		return nil, decodeErr(ReasonMissingField, "after is missing")
	}
	id, err := t.id(row, at)
	if err != nil {
		return nil, err
	}
	if ev.Workspace, err = t.rowWorkspace(row, at); err != nil {
		return nil, err
	}
	var unknownList []crm.UnknownField
	var unknown *[]crm.UnknownField // noted for DecoderOptions.OnUnknownFields only
	if d.opts.OnUnknownFields != nil {
		unknown = &unknownList
	}
	m, partial, err := t.fields(row, id, cols, d.unavailable, at, unknown)
	if err != nil {
		return nil, err
	}
	if ev.Record, err = newRecord(t.obj, m, at, lim); err != nil {
		return nil, err
	}
	ev.Partial = partial
	if op == opUpdate && before != nil {
		if ev.Before, err = d.changedBefore(t, ev.Record, m, before, id, cols, lim, unknown); err != nil {
			return nil, err
		}
	}
	ev.ID = eventID(qualified, src, p, id)
	if len(unknownList) > 0 {
		d.opts.OnUnknownFields(ev, unknownList)
	}
	return ev, nil
}

// changedBefore builds the before record of an update: the fields of the
// before row whose values differ from the after row. When the before row
// lacks a field the after row has (Postgres without REPLICA IDENTITY FULL
// sends only the key), what changed is unknown and there is no before.
func (d *DebeziumDecoder) changedBefore(t *table, rec *crm.Record, am, before map[string]any, id string, cols map[string]colType, lim crm.Limits, unknown *[]crm.UnknownField) (*crm.Record, *DecodeError) {
	bm, _, err := t.fields(before, id, cols, d.unavailable, "before", unknown)
	if err != nil {
		return nil, err
	}
	for name := range am {
		if _, ok := bm[name]; !ok {
			return nil, nil
		}
	}
	full, err := newRecord(t.obj, bm, "before", lim)
	if err != nil {
		return nil, err
	}
	changed := rec.Changed(full)
	out := make(map[string]any, len(changed))
	for _, name := range changed {
		out[name] = bm[name]
	}
	return newRecord(t.obj, out, "before", lim)
}

// keyRow reads the id of a delete from the message key, a JSON object
// holding the key columns, with or without the schema/payload wrapper.
func (d *DebeziumDecoder) keyRow(key []byte, t *table) map[string]any {
	if len(key) == 0 {
		return nil
	}
	if _, err := precheck(key, &d.opts, nil); err != nil {
		return nil
	}
	m, err := decodeObject(key)
	if err != nil {
		return nil
	}
	if p, ok := m["payload"].(map[string]any); ok {
		if _, direct := m[t.idColumn]; !direct {
			m = p
		}
	}
	if m[t.idColumn] == nil {
		return nil
	}
	return map[string]any{t.idColumn: m[t.idColumn]}
}

// id reads the record id of a row: a non-empty string, or a number as its
// decimal text.
func (t *table) id(row map[string]any, at string) (string, *DecodeError) {
	v := row[t.idColumn]
	name := at + "." + t.idColumn
	if n, ok := numberText(v); ok {
		return n, nil
	}
	return requiredString(v, name)
}

func (t *table) rowWorkspace(row map[string]any, at string) (string, *DecodeError) {
	if t.workspaceColumn == "" {
		return t.workspace, nil
	}
	name := at + "." + t.workspaceColumn
	ws, err := requiredString(row[t.workspaceColumn], name)
	if err != nil {
		return "", err
	}
	if !validWorkspace(ws) {
		return "", decodeErr(ReasonInvalidField, "%s: want 1 to 128 of A-Z a-z 0-9 . _ -", name)
	}
	return ws, nil
}

// fields maps a row to the record fields of t's object: columns renamed,
// columns that are no field dropped, values converted to what
// crm.Object.NewRecord reads (see convert), and id set. partial reports
// that a column held the unavailable placeholder and was left out. The
// columns mapped to no field are appended to *unknown, when unknown is
// not nil, once each.
func (t *table) fields(row map[string]any, id string, cols map[string]colType, unavailable, at string, unknown *[]crm.UnknownField) (map[string]any, bool, *DecodeError) {
	out := make(map[string]any, len(row))
	partial := false
	for col, v := range row {
		if col == t.idColumn {
			continue
		}
		name, renamed := t.rename[col]
		if !renamed {
			if t.hidden[col] || col == "id" {
				continue
			}
			name = col
		}
		f, ok := t.obj.Field(name)
		if !ok {
			// The workspace column is read, if not kept.
			if unknown != nil && col != t.workspaceColumn && !slices.Contains(*unknown, crm.UnknownField{Object: t.obj.Name, Field: col}) {
				*unknown = append(*unknown, crm.UnknownField{Object: t.obj.Name, Field: col})
			}
			continue
		}
		if s, ok := v.(string); ok && s == unavailable {
			partial = true
			continue
		}
		cv, err := convert(v, f, cols[col], t.unit)
		if err != nil {
			colName := col
			if !jsonx.IsName([]byte(col)) {
				colName = "?"
			}
			return nil, false, decodeErr(ReasonInvalidField, "%s.%s (field %s): %s", at, colName, name, err.Error())
		}
		out[name] = cv
	}
	out["id"] = id
	return out, partial, nil
}

// colType is what the schema of a wrapped message says about a column.
type colType struct {
	name  string // the Connect logical type: io.debezium.time.MicroTimestamp, ...
	scale int    // of org.apache.kafka.connect.data.Decimal
}

// Connect logical type names read in column schemas.
const (
	ltTimestamp      = "org.apache.kafka.connect.data.Timestamp"
	ltDate           = "org.apache.kafka.connect.data.Date"
	ltDecimal        = "org.apache.kafka.connect.data.Decimal"
	ltDbzTimestamp   = "io.debezium.time.Timestamp"
	ltDbzMicroTS     = "io.debezium.time.MicroTimestamp"
	ltDbzNanoTS      = "io.debezium.time.NanoTimestamp"
	ltDbzDate        = "io.debezium.time.Date"
	ltDbzVarDecimal  = "io.debezium.data.VariableScaleDecimal"
	maxDecimalBytes  = 64
	maxDecimalScale  = 64
	maxEpochDays     = 3_000_000 // about year 10,000
	maxEventIDLength = MaxEventIDBytes
)

// columnTypes reads the logical types of the row columns from the schema
// of a wrapped message: the struct fields named after (or before).
func (s *connectSchema) columnTypes() map[string]colType {
	if s == nil {
		return nil
	}
	for _, which := range []string{"after", "before"} {
		for _, f := range s.Fields {
			if f.Field != which {
				continue
			}
			var out map[string]colType
			for _, c := range f.Fields {
				if c.Field == "" || c.Name == "" {
					continue
				}
				ct := colType{name: c.Name}
				if sc, ok := c.Parameters["scale"].(string); ok {
					ct.scale, _ = strconv.Atoi(sc)
				}
				if out == nil {
					out = make(map[string]colType, len(f.Fields))
				}
				out[c.Field] = ct
			}
			if out != nil {
				return out
			}
		}
	}
	return nil
}

// convert turns a Debezium column value into what NewRecord reads for
// field f: epoch numbers in timestamp fields become RFC 3339 text (unit
// from the column's logical type, else unit); Connect decimals (base64
// bytes, or VariableScaleDecimal) and numeric text in number fields become
// numbers; numbers in string fields become their text; 0 and 1 in bool
// fields become false and true. Anything else is left for NewRecord to
// accept or reject. Errors never quote the value.
func convert(v any, f *crm.Field, ct colType, unit string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch f.Kind {
	case crm.KindTimestamp:
		n, ok := v.(json.Number)
		if !ok {
			return v, nil
		}
		switch ct.name {
		case ltTimestamp, ltDbzTimestamp:
			unit = "ms"
		case ltDbzMicroTS:
			unit = "us"
		case ltDbzNanoTS:
			unit = "ns"
		case ltDate, ltDbzDate:
			unit = "days"
		}
		t, err := epoch(n, unit)
		if err != nil {
			return nil, err
		}
		return t.Format(time.RFC3339Nano), nil
	case crm.KindDouble, crm.KindInt:
		switch x := v.(type) {
		case string:
			if ct.name == ltDecimal {
				return decimal(x, ct.scale)
			}
			if jsonx.IsNumber(x) {
				return json.Number(x), nil
			}
		case map[string]any:
			if ct.name == ltDbzVarDecimal || (len(x) == 2 && x["scale"] != nil && x["value"] != nil) {
				s, _ := x["value"].(string)
				sc, ok := x["scale"].(json.Number)
				scale, err := strconv.Atoi(string(sc))
				if !ok || err != nil || s == "" {
					return nil, errors.New("want a VariableScaleDecimal {scale, value}")
				}
				return decimal(s, scale)
			}
		}
	case crm.KindString:
		if n, ok := v.(json.Number); ok {
			return string(n), nil
		}
	case crm.KindBool:
		if n, ok := v.(json.Number); ok {
			switch n {
			case "0":
				return false, nil
			case "1":
				return true, nil
			}
		}
	}
	return v, nil
}

// epoch reads an integer count of unit since the Unix epoch.
func epoch(n json.Number, unit string) (time.Time, error) {
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return time.Time{}, errors.New("want an integer epoch time")
	}
	switch unit {
	case "us":
		return time.UnixMicro(i).UTC(), nil
	case "ns":
		return time.Unix(0, i).UTC(), nil
	case "days":
		if i < -maxEpochDays || i > maxEpochDays {
			return time.Time{}, errors.New("epoch day out of range")
		}
		return time.Unix(i*86400, 0).UTC(), nil
	}
	return time.UnixMilli(i).UTC(), nil
}

// decimal reads a Connect decimal: the base64 of the big-endian two's
// complement unscaled value, and the scale.
func decimal(s string, scale int) (json.Number, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return "", errors.New("want a base64 Connect decimal")
	}
	if len(b) > maxDecimalBytes || scale < -maxDecimalScale || scale > maxDecimalScale {
		return "", errors.New("decimal out of range")
	}
	x := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	neg := x.Sign() < 0
	digits := x.Abs(x).String()
	switch {
	case scale < 0:
		digits += strings.Repeat("0", -scale)
	case scale > 0:
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		digits = "-" + digits
	}
	return json.Number(digits), nil
}

// eventTime is when the change happened: source.ts_ms (the commit time in
// the database), else the envelope's ts_ms (when Debezium processed it).
func eventTime(p, src map[string]any) (time.Time, *DecodeError) {
	for _, c := range []struct {
		v    any
		name string
	}{{src["ts_ms"], "source.ts_ms"}, {p["ts_ms"], "ts_ms"}} {
		if c.v == nil {
			continue
		}
		n, ok := c.v.(json.Number)
		if !ok {
			return time.Time{}, decodeErr(ReasonInvalidField, "%s: want number, got %s", c.name, jsonKind(c.v))
		}
		t, err := epoch(n, "ms")
		if err != nil {
			return time.Time{}, decodeErr(ReasonInvalidField, "%s: %s", c.name, err.Error())
		}
		return t, nil
	}
	return time.Time{}, decodeErr(ReasonMissingField, "source.ts_ms and ts_ms are missing")
}

// positionKeys are the source fields that place a change in the database's
// log, in the order they appear in event ids: SQL Server (commit_lsn,
// change_lsn, event_serial_no), Postgres (lsn), MySQL (file, pos, row),
// Oracle (scn, commit_scn, rs_id, ssn).
var positionKeys = []string{"commit_lsn", "change_lsn", "event_serial_no", "lsn", "file", "pos", "row", "scn", "commit_scn", "rs_id", "ssn"}

// eventID is the deterministic id of a change event:
//
//	dbz:<table>:<position>:<record id>
//
// table is schema.table or db.table when the source names them; position
// is the key=value pairs of the source's log position (positionKeys
// present, comma-separated), or ts=<source.ts_ms> when it has none. The
// same change redelivered, or re-emitted by a restarted connector, has the
// same id. An id longer than MaxEventIDBytes is replaced by
// dbz:sha256:<hex of the long id>.
func eventID(tbl string, src, p map[string]any, recordID string) string {
	var b strings.Builder
	b.WriteString("dbz:")
	b.WriteString(tbl)
	b.WriteByte(':')
	n := 0
	for _, k := range positionKeys {
		s, ok := scalarText(src[k])
		if !ok {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(s)
		n++
	}
	if n == 0 {
		ts, ok := scalarText(src["ts_ms"])
		if !ok {
			ts, _ = scalarText(p["ts_ms"])
		}
		b.WriteString("ts=")
		b.WriteString(ts)
	}
	b.WriteByte(':')
	b.WriteString(recordID)
	id := b.String()
	if len(id) > maxEventIDLength {
		sum := sha256.Sum256([]byte(id))
		id = "dbz:sha256:" + hex.EncodeToString(sum[:])
	}
	return id
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return string(x), true
	case string:
		return x, x != ""
	}
	return "", false
}
