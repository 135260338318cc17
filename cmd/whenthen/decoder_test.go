package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Debezium fixtures: a whenthen run config file whose decoder section
// maps two tables, change events of them (and of a table it does not
// map), and scenario tests.
const dbzDir = authoringTestdata + "debezium/"

// TestOfflineDebezium: eval, explain, backtest and test read Debezium
// change events with the decoder section of a run config file, and warn
// of the columns no field holds.
func TestOfflineDebezium(t *testing.T) {
	rules := []string{"--rules", "../../examples/automations", "--schema", "../../examples/schema.yaml"}
	cfg := []string{"--decoder-config", dbzDir + "whenthen.yaml"}
	warnings := "whenthen %s: warning: opportunity.internal_notes is not a field of the schema: dropped (first in event dbz:public.opportunities:lsn=100:1001, " + dbzDir + "events.jsonl:1)\n" +
		"whenthen %s: warning: lead.utm_campaign is not a field of the schema: dropped (first in event dbz:public.leads:lsn=300:2001, " + dbzDir + "events.jsonl:3)\n"
	for _, tt := range []struct {
		name   string
		args   []string
		golden string
		stderr string
	}{
		{"eval", append(append([]string{"eval", "--events", dbzDir + "events.jsonl"}, rules...), cfg...), "eval.jsonl",
			strings.ReplaceAll(warnings, "%s", "eval")},
		{"eval --decoder debezium", append(append([]string{"eval", "--events", dbzDir + "events.jsonl", "--decoder", "debezium"}, rules...), cfg...), "eval.jsonl",
			strings.ReplaceAll(warnings, "%s", "eval")},
		{"explain", append(append([]string{"explain", "--event", dbzDir + "update.json"}, rules...), cfg...), "explain.txt",
			"whenthen explain: warning: opportunity.internal_notes is not a field of the schema: dropped (first in event dbz:public.opportunities:lsn=200:1001, " + dbzDir + "update.json)\n"},
		{"backtest", append([]string{"backtest", "--baseline", "../../examples/automations", "--events", dbzDir + "events.jsonl",
			"--rules", authoringTestdata + "backtest/new", "--schema", "../../examples/schema.yaml"}, cfg...), "backtest.txt", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tt.args...)
			if code != 0 || errs != tt.stderr {
				t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", code, errs, tt.stderr)
			}
			golden(t, dbzDir+tt.golden, out)
		})
	}
	code, out, errs := runCmd(t, "test", dbzDir+"tests")
	wantErr := "whenthen test: warning: opportunity.internal_notes is not a field of the schema: dropped (first in event dbz:public.opportunities:lsn=200:1001, " + dbzDir + "tests/config.yaml:12)\n"
	if code != 0 || !strings.HasPrefix(out, "2 passed, 0 failed\n") || errs != wantErr {
		t.Fatalf("test: exit %d:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// TestOfflineDecoderErrors: a decoder that cannot be built is a usage
// error (exit 2) that says what is missing.
func TestOfflineDecoderErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envelope := write("envelope.yaml", "decoder: {type: envelope}\n")
	badObject := write("bad.yaml", "decoder: {type: debezium, tables: {public.deals: {object: deal}}}\n")
	typo := write("typo.yaml", "decoder: {type: debezium, tabels: {}}\n")
	base := []string{"--rules", "../../examples/automations", "--schema", "../../examples/schema.yaml"}
	for _, tt := range []struct {
		extra []string
		msg   string
	}{
		{[]string{"--decoder", "debezium"}, "--decoder debezium needs table mappings: give --decoder-config FILE, a whenthen run config file with decoder.tables (docs/events.md)"},
		{[]string{"--decoder", "debezium", "--decoder-config", envelope}, "--decoder debezium: " + envelope + " has no decoder.tables (docs/events.md)"},
		{[]string{"--decoder", "avro"}, `decoder: decoder "avro": want envelope or debezium`},
		{[]string{"--decoder-config", badObject}, "decoder of " + badObject + `: ingest: table public.deals: object "deal" is not one of account, opportunity, lead, contact`},
		{[]string{"--decoder-config", typo}, "config " + typo + ": yaml: unmarshal errors:\n  line 1: field tabels not found in type main.decoderConfig"},
		{[]string{"--decoder-config", filepath.Join(dir, "missing.yaml")}, "no such file or directory"},
	} {
		for _, cmd := range [][]string{
			{"eval", "--events", dbzDir + "events.jsonl"},
			{"explain", "--event", dbzDir + "update.json"},
			{"backtest", "--baseline", "../../examples/automations", "--events", dbzDir + "events.jsonl"},
		} {
			args := append(append(append([]string{}, cmd...), base...), tt.extra...)
			code, _, errs := runCmd(t, args...)
			if code != 2 || !strings.Contains(errs, tt.msg) {
				t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", args, code, errs, tt.msg)
			}
		}
	}
}
