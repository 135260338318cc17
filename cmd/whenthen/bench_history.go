package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/whenthen/whenthen/bench"
)

// benchHistory holds the flags of the history scenario of `whenthen
// bench` (bench/history.go), which runs only when --scenarios names
// "history": it needs a PostgreSQL server, and seeding its large table
// takes minutes.
type benchHistory struct {
	o bench.HistoryOptions
}

func (h *benchHistory) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.o.PostgresURL, "history-db", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "history scenario: PostgreSQL `URL` whose user may create databases")
	fs.IntVar(&h.o.Rows, "history-rows", 0, "history scenario: runs in the table the API queries run on (default 10000000)")
	fs.IntVar(&h.o.WriteRuns, "history-write-runs", 0, "history scenario: runs written through the store (default 400000)")
	fs.IntVar(&h.o.Queries, "history-queries", 0, "history scenario: times each API query runs (default 200)")
	fs.BoolVar(&h.o.Keep, "history-keep", false, "history scenario: keep the benchmark's databases")
}

// apply turns the scenario on when list names it, and returns list
// without it for selectScenarios ("" when it named only history).
func (h *benchHistory) apply(o *bench.Options, list string) string {
	var rest []string
	for _, item := range strings.Split(list, ",") {
		if strings.TrimSpace(item) == "history" {
			o.History = &h.o
			continue
		}
		rest = append(rest, item)
	}
	if o.History != nil && len(rest) == 0 {
		o.NoMatch, o.NoE2E, o.NoLoad, o.NoDeliver = true, true, true, true
		return ""
	}
	return strings.Join(rest, ",")
}

func printBenchHistory(w io.Writer, r *bench.Results) {
	h := r.History
	if h == nil {
		return
	}
	fmt.Fprintf(w, "\nhistory: PostgreSQL, run records of %d automations in one workspace\n\n", h.Automations)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  writes\t%.0f runs/s\tstore.Write, %d runs decoded from their JSON, batches of %d, one transaction each\n", h.WriteRunsPerSec, h.WriteRuns, h.WriteBatch)
	fmt.Fprintf(tw, "  service\t%.0f runs/s\tthe history service draining %d runs from Kafka (4 partitions) into PostgreSQL\n", h.ServiceRunsPerSec, h.ServiceRuns)
	fmt.Fprintf(tw, "  table\t%d runs\tseeded in %.0f s: %.0f MiB of rows, %.0f MiB of indexes\n", h.Rows, h.SeedSeconds, h.TableMB, h.IndexMB)
	fmt.Fprintf(tw, "  dev page\tp50 %.1f ms\tp95 %.1f ms: the overview of an embedded store of %d runs (SQLite)\n", h.DevPageP50MS, h.DevPageP95MS, h.DevRuns)
	tw.Flush()
	fmt.Fprintf(w, "\nAPI queries over the table, through HTTP on loopback\n\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  query\tn\tp50 ms\tp95 ms\tmax ms\texample")
	for _, q := range h.Queries {
		fmt.Fprintf(tw, "  %s\t%d\t%.1f\t%.1f\t%.1f\t%s\n", q.Name, q.N, q.P50MS, q.P95MS, q.MaxMS, q.Path)
	}
	tw.Flush()
}
