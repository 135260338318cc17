package crm

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/whenthen/whenthen/internal/yamlfile"
	"go.yaml.in/yaml/v3"
)

// Kind is the type of a record field.
type Kind uint8

// Field kinds. The names are those of the schema file and of CEL.
const (
	KindString Kind = iota + 1
	KindInt
	KindDouble
	KindBool
	KindTimestamp
	KindStringList
	KindDynMap
	KindObjectList // a list of nested objects (tracker participants); not declarable in schema files
)

var kindNames = map[Kind]string{
	KindString:     "string",
	KindInt:        "int",
	KindDouble:     "double",
	KindBool:       "bool",
	KindTimestamp:  "timestamp",
	KindStringList: "list(string)",
	KindDynMap:     "map(string, dyn)",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	if k == KindObjectList {
		return "list(object)"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// parseKind reads a type name as written in a schema file.
func parseKind(s string) (Kind, bool) {
	norm := strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	for k, n := range kindNames {
		if strings.ReplaceAll(n, " ", "") == norm {
			return k, true
		}
	}
	return 0, false
}

// Field is one field of an object.
type Field struct {
	Name   string
	Kind   Kind
	Index  int     // position in Record values
	Elem   *Object // element object of a KindObjectList field
	Custom bool    // declared in a schema file rather than built in
	// Values are the values a string field may hold (a picklist), as the
	// schema file lists them; nil when any string goes. "" (the value of
	// an absent field) is always possible. See picklist.go.
	Values []string

	binNum uint64 // the name's number in binary records; 0: none (record_bin.go)
}

// Object is a record type: one of the CRM objects, or a nested type such as
// a tracker or an event.
type Object struct {
	Name     string // account, opportunity, ...
	TypeName string // CEL type name: crm.Account, ...
	Fields   []*Field
	byName   map[string]*Field
	celType  *types.Type
	zero     *Record
	id       *Field // the id field; nil when the object has none
}

// Field returns the named field.
func (o *Object) Field(name string) (*Field, bool) {
	f, ok := o.byName[name]
	return f, ok
}

// CELType is the object's CEL type.
func (o *Object) CELType() *types.Type { return o.celType }

func (o *Object) add(name string, k Kind, custom bool) *Field {
	f := &Field{Name: name, Kind: k, Index: len(o.Fields), Custom: custom, binNum: binFieldNum[name]}
	o.Fields = append(o.Fields, f)
	o.byName[name] = f
	if name == "id" {
		o.id = f
	}
	return f
}

func newObject(name, typeName string) *Object {
	return &Object{Name: name, TypeName: typeName, byName: map[string]*Field{}, celType: types.NewObjectType(typeName)}
}

// The CRM objects records can be of.
const (
	ObjAccount     = "account"
	ObjOpportunity = "opportunity"
	ObjLead        = "lead"
	ObjContact     = "contact"
)

// CRMObjects lists the record objects, in a fixed order.
var CRMObjects = []string{ObjAccount, ObjOpportunity, ObjLead, ObjContact}

var standardFields = map[string][]struct {
	name string
	kind Kind
}{
	ObjAccount: {
		{"name", KindString}, {"tier", KindString}, {"industry", KindString}, {"region", KindString},
		{"annual_revenue", KindDouble}, {"employee_count", KindInt}, {"renewal_date", KindTimestamp},
		{"primary_contact_id", KindString},
	},
	ObjOpportunity: {
		{"name", KindString}, {"account_id", KindString}, {"stage", KindString}, {"type", KindString},
		{"forecast_category", KindString}, {"amount", KindDouble}, {"probability", KindDouble},
		{"close_date", KindTimestamp}, {"primary_contact_id", KindString},
	},
	ObjLead: {
		{"email", KindString}, {"first_name", KindString}, {"last_name", KindString}, {"company", KindString},
		{"status", KindString}, {"source", KindString}, {"country", KindString}, {"score", KindInt},
	},
	ObjContact: {
		{"email", KindString}, {"first_name", KindString}, {"last_name", KindString}, {"title", KindString},
		{"account_id", KindString}, {"phone", KindString},
	},
}

// Schema is the set of record types rules are checked against and events
// are decoded with: the standard CRM objects, their custom fields, and the
// fixed tracker, participant, call and event types.
type Schema struct {
	objects     map[string]*Object
	Tracker     *Object
	Participant *Object
	Call        *Object
	Event       *Object
}

// Object returns the CRM object of that name.
func (s *Schema) Object(name string) (*Object, bool) {
	o, ok := s.objects[name]
	return o, ok
}

// Objects returns every type of the schema, the CRM objects first, then
// the tracker, participant, call and event types.
func (s *Schema) Objects() []*Object {
	out := make([]*Object, 0, len(s.objects)+4)
	for _, n := range CRMObjects {
		out = append(out, s.objects[n])
	}
	return append(out, s.Tracker, s.Participant, s.Call, s.Event)
}

// ObjectOfType returns the type whose CEL type name is typeName
// ("crm.Opportunity").
func (s *Schema) ObjectOfType(typeName string) (*Object, bool) {
	for _, o := range s.Objects() {
		if o.TypeName == typeName {
			return o, true
		}
	}
	return nil, false
}

// DefaultSchema returns the standard schema (docs/schema.md) with no
// custom fields.
func DefaultSchema() *Schema {
	s, err := buildSchema(nil)
	if err != nil {
		panic(err) // the built-in schema is a constant
	}
	return s
}

// LoadSchema reads a schema file adding custom fields to the standard ones.
func LoadSchema(path string) (*Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	return ParseSchema(path, data)
}

// ParseSchema parses a schema file's content; name is used in errors.
//
//	objects:
//	  opportunity:
//	    fields:
//	      seats: int
func ParseSchema(name string, data []byte) (*Schema, error) {
	root, perr := yamlfile.Parse(name, data)
	if perr != nil {
		return nil, perr
	}
	var errs yamlfile.ErrorList
	custom := map[string][]customField{}
	var picks []picklist
	if root == nil {
		return buildSchema(nil)
	}
	at := func(n *yaml.Node, format string, args ...any) {
		errs = append(errs, &yamlfile.Error{File: name, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
	}
	if root.Kind != yaml.MappingNode {
		at(root, "schema must be a mapping with key \"objects\"")
		return nil, errs
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "objects" {
			at(k, "unknown key %q (want \"objects\")", k.Value)
			continue
		}
		if v.Kind != yaml.MappingNode {
			at(v, "objects must be a mapping of object name to {fields: ...}")
			continue
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			ok, ov := v.Content[j], v.Content[j+1]
			if _, known := standardFields[ok.Value]; !known {
				at(ok, "unknown object %q (want one of %s)", ok.Value, strings.Join(CRMObjects, ", "))
				continue
			}
			if ov.Kind != yaml.MappingNode {
				at(ov, "object %s must be a mapping with key \"fields\"", ok.Value)
				continue
			}
			for m := 0; m+1 < len(ov.Content); m += 2 {
				fk, fv := ov.Content[m], ov.Content[m+1]
				if fk.Value != "fields" {
					at(fk, "unknown key %q (want \"fields\")", fk.Value)
					continue
				}
				if fv.Kind != yaml.MappingNode {
					at(fv, "fields must be a mapping of field name to type")
					continue
				}
				for f := 0; f+1 < len(fv.Content); f += 2 {
					fn, ft := fv.Content[f], fv.Content[f+1]
					if !validFieldName(fn.Value) {
						at(fn, "invalid field name %q (want [a-z_][a-z0-9_]*)", fn.Value)
						continue
					}
					if celReserved[fn.Value] {
						at(fn, "field name %q is a keyword or reserved word of CEL", fn.Value)
						continue
					}
					if ft.Kind == yaml.MappingNode {
						// {type: T, values: [...]}, or {values: [...]} for a
						// standard field (picklist.go).
						if cf, pl, okSpec := fieldSpec(ok.Value, fn, ft, at); okSpec {
							if cf != nil {
								custom[ok.Value] = append(custom[ok.Value], *cf)
							}
							if pl != nil {
								picks = append(picks, *pl)
							}
						}
						continue
					}
					k, okKind := parseKind(ft.Value)
					if ft.Kind != yaml.ScalarNode || !okKind {
						at(ft, "field %s.%s: unknown type %q (want string, int, double, bool, timestamp, list(string) or map(string, dyn))", ok.Value, fn.Value, ft.Value)
						continue
					}
					custom[ok.Value] = append(custom[ok.Value], customField{fn.Value, k, fn})
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	s, err := buildSchema(custom)
	if err != nil {
		if el, ok := err.(yamlfile.ErrorList); ok {
			for _, e := range el {
				e.File = name
			}
		}
		return nil, err
	}
	if errs := setValues(s, name, picks); len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// celReserved are CEL's keywords and reserved words: a field of that name
// could not be selected in an expression.
var celReserved = map[string]bool{
	"in": true, "true": true, "false": true, "null": true, "as": true, "break": true, "const": true,
	"continue": true, "else": true, "for": true, "function": true, "if": true, "import": true, "let": true,
	"loop": true, "package": true, "namespace": true, "return": true, "var": true, "void": true, "while": true,
}

type customField struct {
	name string
	kind Kind
	node *yaml.Node
}

func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func buildSchema(custom map[string][]customField) (*Schema, error) {
	s := &Schema{objects: map[string]*Object{}}
	var errs yamlfile.ErrorList
	for _, name := range CRMObjects {
		o := newObject(name, "crm."+strings.ToUpper(name[:1])+name[1:])
		o.add("id", KindString, false)
		o.add("owner_id", KindString, false)
		o.add("created_at", KindTimestamp, false)
		o.add("updated_at", KindTimestamp, false)
		for _, f := range standardFields[name] {
			o.add(f.name, f.kind, false)
		}
		cf := custom[name]
		sort.SliceStable(cf, func(i, j int) bool { return cf[i].name < cf[j].name })
		for _, f := range cf {
			if prev, dup := o.byName[f.name]; dup {
				what := "declared twice"
				if !prev.Custom {
					what = "is a standard field"
				}
				errs = append(errs, &yamlfile.Error{Line: f.node.Line, Col: f.node.Column, Msg: fmt.Sprintf("field %s.%s %s", name, f.name, what)})
				continue
			}
			o.add(f.name, f.kind, true)
		}
		s.objects[name] = o
	}
	if len(errs) > 0 {
		return nil, errs
	}
	p := newObject("participant", "crm.Participant")
	p.add("contact_id", KindString, false)
	p.add("role", KindString, false)
	p.add("name", KindString, false)
	s.Participant = p

	t := newObject("tracker", "crm.Tracker")
	t.add("name", KindString, false)
	t.add("call_id", KindString, false)
	t.add("confidence", KindDouble, false)
	t.add("participants", KindObjectList, false).Elem = p
	s.Tracker = t

	c := newObject("call", "crm.Call")
	c.add("id", KindString, false)
	c.add("title", KindString, false)
	c.add("started_at", KindTimestamp, false)
	c.add("duration_s", KindInt, false)
	c.add("direction", KindString, false)
	c.add("participants", KindObjectList, false).Elem = p
	c.add("account_id", KindString, false)
	c.add("opportunity_id", KindString, false)
	s.Call = c

	e := newObject("event", "crm.Event")
	e.add("id", KindString, false)
	e.add("type", KindString, false)
	e.add("time", KindTimestamp, false)
	e.add("object", KindString, false)
	e.add("workspace", KindString, false)
	s.Event = e

	for _, o := range s.Objects() {
		o.zero = &Record{obj: o, vals: make([]ref.Val, len(o.Fields))}
	}
	return s, nil
}
