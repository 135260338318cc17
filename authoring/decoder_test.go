package authoring

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunTestsDebezium: test files of Debezium change events, the decoder
// given inline or by a whenthen run config file, run as envelopes do; the
// columns no field holds are noted where first seen.
func TestRunTestsDebezium(t *testing.T) {
	files := []string{"testdata/debezium/tests/config.yaml", "testdata/debezium/tests/inline.yaml"}
	rep := RunTests(context.Background(), files, TestOptions{})
	var b strings.Builder
	rep.WriteText(&b, true)
	if passed, failed, errored := rep.Counts(); passed != 2 || failed != 0 || errored != 0 {
		t.Fatalf("%d passed, %d failed, %d errored:\n%s", passed, failed, errored, b.String())
	}
	want := "opportunity.internal_notes is not a field of the schema: dropped (first in event dbz:public.opportunities:lsn=200:1001, testdata/debezium/tests/config.yaml:12)"
	if len(rep.UnknownFields) != 1 || rep.UnknownFields[0].String() != want {
		t.Fatalf("unknown fields: %v\nwant %s", rep.UnknownFields, want)
	}
	tf, err := LoadTestFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if tf.Decoder == nil || !tf.Decoder.Debezium || tf.Decoder.From != "testdata/debezium/whenthen.yaml" ||
		tf.Decoder.Options.Tables["public.leads"].Object != "lead" {
		t.Fatalf("decoder: %+v", tf.Decoder)
	}
}

// TestRunTestsDebeziumErrors: an event of a table with no mapping is an
// error of its test; a mapping the schema rejects, of its file.
func TestRunTestsDebeziumErrors(t *testing.T) {
	dir := t.TempDir()
	examples, _ := filepath.Abs("../examples")
	head := "rules: [" + examples + "/automations]\nschema: " + examples + "/schema.yaml\n"
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(head+body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unmapped := write("unmapped.yaml", `decoder: {type: debezium, tables: {public.leads: {object: lead}}}
tests:
  - name: unmapped
    events:
      - {op: c, after: {id: 1}, source: {schema: public, table: invoices, ts_ms: 1793610000000, lsn: 4}}
`)
	badObject := write("bad-object.yaml", `decoder: {type: debezium, tables: {public.deals: {object: deal}}}
tests:
  - name: never runs
    events:
      - {op: c, after: {id: 1}, source: {schema: public, table: deals, ts_ms: 1793610000000, lsn: 4}}
`)
	rep := RunTests(context.Background(), []string{unmapped, badObject}, TestOptions{})
	var b strings.Builder
	rep.WriteText(&b, false)
	for _, want := range []string{
		"ERROR unmapped (" + unmapped + ":5)\n    event 1 (line 7) is not a valid event: unknown_table: source.table: no table mapping for the event's table\n",
		"ERROR " + badObject + ":\n    ingest: table public.deals: object \"deal\" is not one of account, opportunity, lead, contact\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestTestFileDecoderErrors: every mistake in a decoder section, at its
// position: in the test file, or in the config file it names.
func TestTestFileDecoderErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "whenthen.yaml")
	if err := os.WriteFile(cfg, []byte("kafka: {brokers: [k:9092]}\ndecoder:\n  type: debezium\n  tabels: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noSection := filepath.Join(dir, "nosection.yaml")
	if err := os.WriteFile(noSection, []byte("kafka: {brokers: [k:9092]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const tests = "tests:\n  - {name: t, events: [{op: c}]}\n"
	for _, tt := range []struct {
		name, decoder, want string
	}{
		{"a kind alone", "decoder: debezium\n",
			"f.yaml:2:10: decoder: debezium needs table mappings: decoder: {type: debezium, tables: {...}}, or decoder: {config: FILE} naming a whenthen run config file"},
		{"an unknown kind", "decoder: avro\n", `f.yaml:2:10: decoder: unknown decoder "avro" (want envelope or debezium)`},
		{"an unknown type", "decoder: {type: avro}\n", `f.yaml:2:17: decoder.type: unknown decoder "avro" (want envelope or debezium)`},
		{"no tables", "decoder: {type: debezium}\n", "f.yaml:2:10: decoder: the debezium decoder needs tables"},
		{"tables for the envelope", "decoder: {tables: {t: {object: lead}}}\n",
			"f.yaml:2:19: decoder.tables: Debezium tables given for the envelope decoder (add type: debezium)"},
		{"an unknown key", "decoder: {type: debezium, table: {}}\n",
			`f.yaml:2:27: decoder: unknown key "table" (want type, tables, unavailable_value, max_bytes, max_depth, max_elements)`},
		{"a mapping without object", "decoder: {type: debezium, tables: {t: {workspace: acme}}}\n",
			"f.yaml:2:39: decoder.tables.t.object is required"},
		{"an unknown mapping key", "decoder: {type: debezium, tables: {t: {object: lead, id: x}}}\n",
			`f.yaml:2:54: decoder.tables.t: unknown key "id" (want object, id_column, workspace, workspace_column, columns, time_unit)`},
		{"empty tables", "decoder: {type: debezium, tables: {}}\n", "f.yaml:2:35: decoder.tables is empty"},
		{"a negative size", "decoder: {max_bytes: -1}\n", "f.yaml:2:22: decoder.max_bytes must be a whole number of at least 0"},
		{"config and more", "decoder: {config: x.yaml, type: debezium}\n",
			"f.yaml:2:10: decoder: with config, give no other key (the file's decoder section is the decoder)"},
		{"a missing config file", "decoder: {config: missing.yaml}\n", "f.yaml:2:19: decoder.config: open " + filepath.Join(dir, "missing.yaml") + ": no such file or directory"},
		{"a config without a decoder section", "decoder: {config: nosection.yaml}\n", "f.yaml:2:19: decoder.config: " + filepath.ToSlash(noSection) + " has no decoder section"},
		{"an error in the config file", "decoder: {config: whenthen.yaml}\n",
			cfg + `:4:3: decoder: unknown key "tabels" (want type, tables, unavailable_value, max_bytes, max_depth, max_elements)`},
		{"a workspace with Debezium", "workspace: acme\ndecoder: {type: debezium, tables: {t: {object: lead}}}\n",
			"f.yaml:2:1: workspace applies to envelope events; a Debezium table mapping gives the workspace of its rows"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTestFile(filepath.Join(dir, "f.yaml"), []byte("rules: [x]\n"+tt.decoder+tests))
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), filepath.Join(dir, "f.yaml"), "f.yaml")
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestTestFileSyntaxError: a YAML mistake in a test file is reported at
// its line and column, saying what it is.
func TestTestFileSyntaxError(t *testing.T) {
	_, err := ParseTestFile("t.yaml", []byte("rules: [x]\ntests:\n  - name: a\n    events:\n      - {id: e1, type: record.created\n    expect: {}\n"))
	want := "t.yaml:5:9: invalid YAML: this '{' is not closed on its line (expected '}' before line 6)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if _, err := ParseTestFile("t.yaml", nil); err == nil || err.Error() != "t.yaml: the file is empty: want a mapping with rules and tests" {
		t.Fatalf("empty file: %v", err)
	}
}
