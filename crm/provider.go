package crm

import (
	"fmt"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// TypeProvider is the CEL type provider built from a Schema: the CRM objects,
// tracker, participant, call and event are CEL object types whose fields are
// typed, so that an unknown field is a check error, not a runtime false.
// Everything else is delegated to the standard registry.
type TypeProvider struct {
	*types.Registry
	schema *Schema
	fields map[string]map[string]*types.FieldType // type name -> field -> type
}

// NewTypeProvider returns the CEL type provider and adapter of the
// schema's types, for cel.CustomTypeProvider and cel.CustomTypeAdapter.
func NewTypeProvider(s *Schema) (*TypeProvider, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	p := &TypeProvider{Registry: reg, schema: s, fields: map[string]map[string]*types.FieldType{}}
	for _, o := range s.Objects() {
		fm := make(map[string]*types.FieldType, len(o.Fields))
		for _, f := range o.Fields {
			fm[f.Name] = fieldType(f)
		}
		p.fields[o.TypeName] = fm
	}
	return p, nil
}

func celType(f *Field) *types.Type {
	switch f.Kind {
	case KindString:
		return types.StringType
	case KindInt:
		return types.IntType
	case KindDouble:
		return types.DoubleType
	case KindBool:
		return types.BoolType
	case KindTimestamp:
		return types.TimestampType
	case KindStringList:
		return types.NewListType(types.StringType)
	case KindDynMap:
		return types.NewMapType(types.StringType, types.DynType)
	case KindObjectList:
		return types.NewListType(f.Elem.celType)
	}
	return types.DynType
}

func fieldType(f *Field) *types.FieldType {
	return &types.FieldType{
		Type: celType(f),
		IsSet: func(obj any) bool {
			r, ok := obj.(*Record)
			return ok && r.IsSet(f)
		},
		GetFrom: func(obj any) (any, error) {
			r, ok := obj.(*Record)
			if !ok {
				return nil, fmt.Errorf("no such field %q on %T", f.Name, obj)
			}
			return r.FieldValue(f), nil
		},
	}
}

// FindStructType implements types.Provider.
func (p *TypeProvider) FindStructType(name string) (*types.Type, bool) {
	if o, ok := p.schema.ObjectOfType(name); ok {
		return types.NewTypeTypeWithParam(o.celType), true
	}
	return p.Registry.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *TypeProvider) FindStructFieldNames(name string) ([]string, bool) {
	if o, ok := p.schema.ObjectOfType(name); ok {
		names := make([]string, len(o.Fields))
		for i, f := range o.Fields {
			names[i] = f.Name
		}
		return names, true
	}
	return p.Registry.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *TypeProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if fm, ok := p.fields[name]; ok {
		ft, ok := fm[field]
		return ft, ok
	}
	return p.Registry.FindStructFieldType(name, field)
}

// NewValue implements types.Provider. Records come from events; rules
// cannot construct them.
func (p *TypeProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.schema.ObjectOfType(name); ok {
		return types.NewErr("cannot construct %s values in a condition", name)
	}
	return p.Registry.NewValue(name, fields)
}
