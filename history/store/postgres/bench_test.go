package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/history/store/storetest"
)

// BenchmarkWrite writes batches of 1,000 runs of 1,000 automations into
// PostgreSQL through store.Write: b.N batches.
func BenchmarkWrite(b *testing.B) {
	d := open(b)
	s, err := store.New(d, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	batches := make([]*store.Batch, b.N)
	for i := range batches {
		var recs []any
		for j := range 1000 {
			n := i*1000 + j
			recs = append(recs, storetest.NewRun("ws-0000", fmt.Sprintf("a-%d", n%1000), fmt.Sprintf("evt-%d", n), "opportunity",
				fmt.Sprintf("006-%d", n%50000), now.Add(time.Duration(n)*time.Millisecond), "completed", ""))
		}
		batches[i] = storetest.Batch(b, recs...)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := s.Write(context.Background(), batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "runs/s")
}
