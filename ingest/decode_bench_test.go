package ingest_test

import (
	"testing"

	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/ingest"
)

// workloadEvents are the events of the benchmark workload: the mix of
// objects, trackers and schedules the service decodes.
func workloadEvents() [][]byte {
	return gen.Workload{Automations: 1000, Workspaces: 1, Seed: 1}.Events(1000)
}

// BenchmarkEnvelopeDecodeWorkload decodes the benchmark workload's events
// (about 500 bytes each), one event per op.
//
//	go test -run '^$' -bench EnvelopeDecodeWorkload -benchmem ./ingest/
func BenchmarkEnvelopeDecodeWorkload(b *testing.B) {
	events := workloadEvents()
	d, err := ingest.NewEnvelopeDecoder(ingest.DecoderOptions{Schema: crm.DefaultSchema()})
	if err != nil {
		b.Fatal(err)
	}
	size := 0
	for _, e := range events {
		if _, err := d.Decode(nil, e); err != nil {
			b.Fatal(err)
		}
		size += len(e)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size / len(events)))
	i := 0
	for b.Loop() {
		if _, err := d.Decode(nil, events[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(events) {
			i = 0
		}
	}
}
