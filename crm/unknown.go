package crm

import "github.com/whenthen/whenthen/internal/jsonx"

// UnknownField is a member of a record's JSON whose name is no field of
// the record's object. Records leave such members out (a schema file must
// declare a custom field for it to be kept); the decoders report them, so
// that a field the schema misses is counted instead of vanishing.
type UnknownField struct {
	Object string // the object's name: opportunity, tracker, participant, ...
	Field  string // the member's name, as it is in the JSON
}

// ReadRecordUnknown is ReadRecord that also appends to *unknown each
// member that is no field of the object, or of a nested object (a
// tracker's participants), once per object and name. Nothing is appended,
// nor allocated, for a record without such members; with unknown nil it
// is ReadRecord.
func (o *Object) ReadRecordUnknown(p *jsonx.Parser, lim Limits, unknown *[]UnknownField) (*Record, error) {
	return o.readRecord(p, lim, unknown)
}

// NewRecordUnknown is NewRecord that also appends to *unknown each member
// that is no field of the object, as ReadRecordUnknown does.
func (o *Object) NewRecordUnknown(m map[string]any, lim Limits, unknown *[]UnknownField) (*Record, error) {
	return o.newRecord(m, lim, unknown)
}

// noteUnknown appends the member name of o to *unknown, unless it is
// there already.
func noteUnknown(unknown *[]UnknownField, o *Object, name string) {
	for _, u := range *unknown {
		if u.Field == name && u.Object == o.Name {
			return
		}
	}
	*unknown = append(*unknown, UnknownField{Object: o.Name, Field: name})
}
