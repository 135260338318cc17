package delivery

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/internal/yamlfile"
)

// decoder fills Go values from YAML nodes the way the config format
// wants it: unknown keys, wrong types and bad durations are errors at
// their FILE:LINE:COL, all of them reported together.
type decoder struct {
	file string
	errs yamlfile.ErrorList
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	nodePtrType  = reflect.TypeFor[*yaml.Node]()
)

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	e := &yamlfile.Error{File: d.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// decode fills v (a pointer) from n. A struct's fields are its yaml tags;
// a field `At *yaml.Node` (tag "-") receives the struct's own node, for
// later errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, what string) {
	if n == nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	t := v.Type()
	switch {
	case t == durationType:
		var s string
		if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
			d.errorf(n, "%s: want a duration such as 30s or 24h", what)
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil || dur < 0 {
			d.errorf(n, "%s: invalid duration %q (want e.g. 30s, 10m, 24h)", what, s)
			return
		}
		v.SetInt(int64(dur))
		return
	case t.Kind() == reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), what)
		v.Set(p)
		return
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "%s: want a mapping", what)
			return
		}
		fields := map[string]int{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if f.Name == "At" && f.Type == nodePtrType {
				v.Field(i).Set(reflect.ValueOf(n))
				continue
			}
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = i
			names = append(names, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			idx, ok := fields[k.Value]
			if !ok {
				d.errorf(k, "%s: unknown key %q (want one of: %s)", what, k.Value, strings.Join(names, ", "))
				continue
			}
			if seen[k.Value] {
				d.errorf(k, "%s: key %q given twice", what, k.Value)
				continue
			}
			seen[k.Value] = true
			d.decode(val, v.Field(idx), what+"."+k.Value)
		}
		return
	case t.Kind() == reflect.Slice:
		if n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "%s: want a list", what)
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", what, i))
		}
		v.Set(s)
		return
	case t.Kind() == reflect.Map:
		if n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "%s: want a mapping", what)
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := reflect.New(t.Key()).Elem()
			d.decode(n.Content[i], k, what)
			val := reflect.New(t.Elem()).Elem()
			d.decode(n.Content[i+1], val, what+"."+n.Content[i].Value)
			if m.MapIndex(k).IsValid() {
				d.errorf(n.Content[i], "%s: key %q given twice", what, n.Content[i].Value)
			}
			m.SetMapIndex(k, val)
		}
		v.Set(m)
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: want a %s", what, kindName(t.Kind()))
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.errorf(n, "%s: want a %s, not %q", what, kindName(t.Kind()), n.Value)
	}
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "whole number"
	case reflect.Float64:
		return "number"
	}
	return k.String()
}
