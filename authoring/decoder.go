package authoring

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/yamlfile"
)

// A test file's events are envelopes (docs/events.md) unless its decoder
// key says otherwise, in the form of the decoder section of `whenthen
// run`'s config file, or by naming such a file:
//
//	decoder: envelope                  # the default
//	decoder:
//	  type: debezium
//	  tables:
//	    public.opportunities: {object: opportunity, workspace: acme, columns: {deal_name: name}}
//	decoder: {config: ../whenthen.yaml} # that file's decoder section
//
// so that a data team tests with the change events it streams, mapped as
// the service maps them.

// DecoderConfig is the decoder of a test file.
type DecoderConfig struct {
	// Debezium tells that the events are Debezium change events, else
	// they are envelopes.
	Debezium bool
	// Options are the decoder's options but for the schema, the limits and
	// OnUnknownFields, which come with the rules: MaxBytes, MaxDepth and
	// MaxElements, and the Debezium Tables and UnavailableValue.
	Options ingest.DebeziumOptions
	// From is the config file the decoder section was read from, "" when
	// the test file gives it.
	From string
}

// newDecoder builds the decoder c describes (the envelope decoder when c
// is nil), of schema's records under lim.
func (c *DecoderConfig) newDecoder(schema *crm.Schema, lim crm.Limits, onUnknown func(*engine.Event, []crm.UnknownField)) (ingest.Decoder, error) {
	var o ingest.DebeziumOptions
	if c != nil {
		o = c.Options
	}
	o.Schema, o.Limits, o.OnUnknownFields = schema, lim, onUnknown
	if c == nil || !c.Debezium {
		return ingest.NewEnvelopeDecoder(o.DecoderOptions)
	}
	if c.From != "" {
		d, err := ingest.NewDebeziumDecoder(o)
		if err != nil {
			return nil, fmt.Errorf("decoder of %s: %w", c.From, err)
		}
		return d, nil
	}
	return ingest.NewDebeziumDecoder(o)
}

// Decoder kinds, as decoder.type spells them.
const (
	decoderEnvelope = "envelope"
	decoderDebezium = "debezium"
)

// decoder reads a test file's decoder key: a kind, or a decoder section,
// or {config: FILE}, FILE relative to dir.
func (p *testParser) decoder(n *yaml.Node, dir string) *DecoderConfig {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case decoderEnvelope:
			return &DecoderConfig{}
		case decoderDebezium:
			p.errAt(n, "", "decoder: debezium needs table mappings: decoder: {type: debezium, tables: {...}}, or decoder: {config: FILE} naming a whenthen run config file")
		default:
			p.errAt(n, "", "decoder: unknown decoder %q (want envelope or debezium)", n.Value)
		}
		return nil
	}
	if n.Kind == yaml.MappingNode && mapHasKey(n, "config") {
		if len(n.Content) != 2 {
			p.errAt(n, "", "decoder: with config, give no other key (the file's decoder section is the decoder)")
			return nil
		}
		path, ok := p.str(n.Content[1], "", "decoder.config")
		if !ok {
			return nil
		}
		return p.decoderFile(n.Content[1], resolve(dir, path))
	}
	return p.decoderSection(n, "decoder")
}

// decoderFile reads the decoder section of a whenthen run config file;
// its other keys are not read. Problems in it are reported at its own
// positions.
func (p *testParser) decoderFile(at *yaml.Node, path string) *DecoderConfig {
	data, err := os.ReadFile(path)
	if err != nil {
		p.errAt(at, "", "decoder.config: %v", err)
		return nil
	}
	root, perr := yamlfile.Parse(path, data)
	if perr != nil {
		p.errs = append(p.errs, &Error{File: perr.File, Line: perr.Line, Col: perr.Col, Msg: perr.Msg})
		return nil
	}
	var section *yaml.Node
	if root != nil && root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "decoder" {
				section = root.Content[i+1]
			}
		}
	}
	if section == nil {
		p.errAt(at, "", "decoder.config: %s has no decoder section", filepath.ToSlash(path))
		return nil
	}
	sub := &testParser{file: path}
	c := sub.decoderSection(section, "decoder")
	p.errs = append(p.errs, sub.errs...)
	if c != nil {
		c.From = path
	}
	return c
}

// decoderSection reads a decoder section as `whenthen run` reads it from
// its config file: type, tables, unavailable_value, max_bytes,
// max_depth, max_elements.
func (p *testParser) decoderSection(n *yaml.Node, what string) *DecoderConfig {
	errs := len(p.errs)
	kind := decoderEnvelope
	var tables map[string]ingest.TableMapping
	var tablesN *yaml.Node
	o := ingest.DebeziumOptions{}
	ok := p.mapping(n, "", what, func(k string, key, v *yaml.Node) {
		switch k {
		case "type":
			if s, okS := p.str(v, "", what+".type"); okS {
				if s != decoderEnvelope && s != decoderDebezium {
					p.errAt(v, "", "%s.type: unknown decoder %q (want envelope or debezium)", what, s)
					return
				}
				kind = s
			}
		case "tables":
			tablesN = v
			tables = p.tables(v, what+".tables")
		case "unavailable_value":
			o.UnavailableValue, _ = p.str(v, "", what+"."+k)
		case "max_bytes":
			o.MaxBytes = p.nonNegative(v, what+"."+k)
		case "max_depth":
			o.MaxDepth = p.nonNegative(v, what+"."+k)
		case "max_elements":
			o.MaxElements = p.nonNegative(v, what+"."+k)
		default:
			p.errAt(key, "", "%s: unknown key %q (want type, tables, unavailable_value, max_bytes, max_depth, max_elements)", what, k)
		}
	})
	if !ok || len(p.errs) > errs {
		return nil
	}
	switch {
	case kind == decoderEnvelope && tablesN != nil:
		p.errAt(tablesN, "", "%s.tables: Debezium tables given for the envelope decoder (add type: debezium)", what)
		return nil
	case kind == decoderEnvelope:
		return &DecoderConfig{Options: o}
	case tablesN == nil:
		p.errAt(n, "", "%s: the debezium decoder needs tables", what)
		return nil
	}
	o.Tables = tables
	return &DecoderConfig{Debezium: true, Options: o}
}

// tables reads Debezium table mappings: per table, object, id_column,
// workspace, workspace_column, columns and time_unit. NewDebeziumDecoder
// checks them against the schema when the tests run.
func (p *testParser) tables(n *yaml.Node, what string) map[string]ingest.TableMapping {
	errs := len(p.errs)
	out := map[string]ingest.TableMapping{}
	ok := p.mapping(n, "", what, func(name string, key, v *yaml.Node) {
		var m ingest.TableMapping
		where := what + "." + name
		good := p.mapping(v, "", where, func(k string, kn, fv *yaml.Node) {
			switch k {
			case "object":
				m.Object, _ = p.str(fv, "", where+".object")
			case "id_column":
				m.IDColumn, _ = p.str(fv, "", where+".id_column")
			case "workspace":
				m.Workspace, _ = p.str(fv, "", where+".workspace")
			case "workspace_column":
				m.WorkspaceColumn, _ = p.str(fv, "", where+".workspace_column")
			case "time_unit":
				m.TimeUnit, _ = p.str(fv, "", where+".time_unit")
			case "columns":
				m.Columns = map[string]string{}
				p.mapping(fv, "", where+".columns", func(col string, _, field *yaml.Node) {
					if s, okS := p.str(field, "", where+".columns."+col); okS {
						m.Columns[col] = s
					}
				})
			default:
				p.errAt(kn, "", "%s: unknown key %q (want object, id_column, workspace, workspace_column, columns, time_unit)", where, k)
			}
		})
		if good && m.Object == "" {
			p.errAt(v, "", "%s.object is required", where)
		}
		out[name] = m
	})
	if !ok || len(p.errs) > errs {
		return nil
	}
	if len(out) == 0 {
		p.errAt(n, "", "%s is empty", what)
		return nil
	}
	return out
}

// nonNegative reads an integer of at least 0.
func (p *testParser) nonNegative(n *yaml.Node, what string) int {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		if i, err := strconv.Atoi(n.Value); err == nil && i >= 0 {
			return i
		}
	}
	p.errAt(n, "", "%s must be a whole number of at least 0", what)
	return 0
}

// mapHasKey tells whether mapping n has key.
func mapHasKey(n *yaml.Node, key string) bool { return keyNode(n, key) != n }

// keyNode returns the node of key in mapping n, or n when it has none.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return n
}
