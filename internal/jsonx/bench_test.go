package jsonx_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/internal/jsonx"
)

// benchInputs are the documents of the benchmarks: the benchmark
// workload's events (about 500 bytes each) and a Debezium change event
// with its schema (about 5 KB).
func benchInputs(b *testing.B) map[string][][]byte {
	dbz, err := os.ReadFile("../../ingest/testdata/debezium/pg_update_wrapped.json")
	if err != nil {
		b.Fatal(err)
	}
	return map[string][][]byte{
		"events":   gen.Workload{Automations: 1000, Workspaces: 1, Seed: 1}.Events(1000),
		"debezium": {dbz},
	}
}

func size(docs [][]byte) int64 {
	n := 0
	for _, d := range docs {
		n += len(d)
	}
	return int64(n / len(docs))
}

// BenchmarkParse builds documents into any, with jsonx and with
// encoding/json (a Decoder with UseNumber, as the decoders used it), one
// document per op.
//
//	go test -run '^$' -bench Parse -benchmem ./internal/jsonx/
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"events", "debezium"} {
		docs := benchInputs(b)[name]
		b.Run(name+"/jsonx", func(b *testing.B) {
			var p jsonx.Parser
			b.ReportAllocs()
			b.SetBytes(size(docs))
			i := 0
			for b.Loop() {
				p.Reset(docs[i])
				if _, err := p.Value(); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(docs) {
					i = 0
				}
			}
		})
		b.Run(name+"/encoding_json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size(docs))
			i := 0
			for b.Loop() {
				dec := json.NewDecoder(bytes.NewReader(docs[i]))
				dec.UseNumber()
				var v any
				if err := dec.Decode(&v); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(docs) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkValidate checks documents with Validate, one per op, with the
// limits and keys of the envelope decoder.
//
//	go test -run '^$' -bench Validate -benchmem ./internal/jsonx/
func BenchmarkValidate(b *testing.B) {
	var keys [][]byte
	for _, k := range []string{"id", "type", "time", "workspace", "object", "record", "before", "partial", "tracker", "account", "opportunity", "schedule"} {
		keys = append(keys, []byte(k))
	}
	opts := jsonx.ValidateOptions{MaxDepth: 32, MaxElements: 4096, Keys: keys}
	offsets := make([]int, len(keys))
	for _, name := range []string{"events", "debezium"} {
		docs := benchInputs(b)[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size(docs))
			i := 0
			for b.Loop() {
				if _, err := jsonx.Validate(docs[i], opts, offsets); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(docs) {
					i = 0
				}
			}
		})
	}
}
