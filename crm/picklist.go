package crm

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/internal/yamlfile"
)

// Picklists: a schema file may list the values a string field holds,
// custom or standard, so that a condition comparing the field with any
// other constant is a load error (package rules) instead of a condition
// that silently never matches:
//
//	objects:
//	  opportunity:
//	    fields:
//	      stage: {values: [Prospecting, Negotiation, Closed Won, Closed Lost]}  # a standard field
//	      segment: {type: string, values: [SMB, Mid-Market, Enterprise]}       # a custom one
//
// A standard field's type is fixed, so its mapping has no type. Events are
// not checked against the list: a CRM may hold other values, which
// conditions simply do not name.

// picklist is the values a schema file gives a field, applied once the
// schema is built (setValues).
type picklist struct {
	object string
	field  *yaml.Node // the field name
	values []string
	node   *yaml.Node // the values list
}

// fieldSpec reads the mapping form of a field of object: {type: T,
// values: [...]} declares a custom field (with values only for a string),
// {values: [...]} gives the values of a standard one. It returns the
// custom field and the values to apply, either of them nil, and false
// after reporting an error with at.
func fieldSpec(object string, name, n *yaml.Node, at func(*yaml.Node, string, ...any)) (*customField, *picklist, bool) {
	var typeN, valuesN *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "type":
			if typeN != nil {
				at(k, "field %s.%s: key \"type\" given twice", object, name.Value)
				return nil, nil, false
			}
			typeN = v
		case "values":
			if valuesN != nil {
				at(k, "field %s.%s: key \"values\" given twice", object, name.Value)
				return nil, nil, false
			}
			valuesN = v
		default:
			at(k, "field %s.%s: unknown key %q (want type, values)", object, name.Value, k.Value)
			return nil, nil, false
		}
	}
	if typeN == nil && valuesN == nil {
		at(n, "field %s.%s: give its type, its values, or both (%s: {type: string, values: [...]})", object, name.Value, name.Value)
		return nil, nil, false
	}
	var pl *picklist
	if valuesN != nil {
		values, ok := readValues(object, name.Value, valuesN, at)
		if !ok {
			return nil, nil, false
		}
		pl = &picklist{object: object, field: name, values: values, node: valuesN}
	}
	if typeN == nil {
		return nil, pl, true // a standard field's values: setValues checks it is one
	}
	k, okKind := parseKind(typeN.Value)
	if typeN.Kind != yaml.ScalarNode || !okKind {
		at(typeN, "field %s.%s: unknown type %q (want string, int, double, bool, timestamp, list(string) or map(string, dyn))", object, name.Value, typeN.Value)
		return nil, nil, false
	}
	if std, ok := DefaultSchema().objects[object].byName[name.Value]; ok {
		hint := ""
		if std.Kind == KindString {
			hint = fmt.Sprintf("; to list its values leave out type: %s: {values: [...]}", name.Value)
		}
		at(name, "field %s.%s is a standard field%s", object, name.Value, hint)
		return nil, nil, false
	}
	if pl != nil && k != KindString {
		at(valuesN, "field %s.%s: values apply to string fields only, not %s", object, name.Value, k)
		return nil, nil, false
	}
	return &customField{name.Value, k, name}, pl, true
}

// readValues reads a values list: a non-empty list of distinct, non-empty
// scalars, taken as written (the text of 12 is "12").
func readValues(object, field string, n *yaml.Node, at func(*yaml.Node, string, ...any)) ([]string, bool) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		at(n, "field %s.%s: values must be a non-empty list of strings", object, field)
		return nil, false
	}
	ok := true
	seen := map[string]bool{}
	out := make([]string, 0, len(n.Content))
	for _, v := range n.Content {
		switch {
		case v.Kind != yaml.ScalarNode:
			at(v, "field %s.%s: a value must be a string, not a %s", object, field, nodeKind(v))
			ok = false
		case v.ShortTag() == "!!null" || v.Value == "":
			at(v, "field %s.%s: a value is empty (\"\", the value of an absent field, is always allowed and not listed)", object, field)
			ok = false
		case seen[v.Value]:
			at(v, "field %s.%s: value %q is listed twice", object, field, v.Value)
			ok = false
		default:
			seen[v.Value] = true
			out = append(out, v.Value)
		}
	}
	return out, ok
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "scalar"
}

// setValues gives the fields of s the values the schema file lists,
// checking that a field given values without a type is a standard string
// field.
func setValues(s *Schema, file string, picks []picklist) yamlfile.ErrorList {
	var errs yamlfile.ErrorList
	at := func(n *yaml.Node, format string, args ...any) {
		errs = append(errs, &yamlfile.Error{File: file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
	}
	for _, p := range picks {
		obj := s.objects[p.object]
		name := p.field.Value
		f, ok := obj.byName[name]
		switch {
		case !ok:
			at(p.field, "field %s.%s is not a standard field: declare it with its type (%s: {type: string, values: [...]})", p.object, name, name)
		case f.Values != nil:
			at(p.field, "field %s.%s: values given twice", p.object, name)
		case f.Kind != KindString:
			at(p.node, "field %s.%s is a %s; values apply to string fields only", p.object, name, f.Kind)
		default:
			f.Values = p.values
		}
	}
	return errs
}

// HasValues tells whether any field of the schema lists its values.
func (s *Schema) HasValues() bool {
	for _, o := range s.Objects() {
		for _, f := range o.Fields {
			if f.Values != nil {
				return true
			}
		}
	}
	return false
}

// ValuesText lists a field's values for messages, "A, B, C", eliding
// after the first 12.
func (f *Field) ValuesText() string {
	const most = 12
	if len(f.Values) <= most {
		return strings.Join(f.Values, ", ")
	}
	return fmt.Sprintf("%s, … %d more", strings.Join(f.Values[:most], ", "), len(f.Values)-most)
}
