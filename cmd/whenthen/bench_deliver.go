package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/whenthen/whenthen/bench"
)

// printDeliverBench writes the delivery benchmark's table; nothing when
// it did not run.
func printDeliverBench(w io.Writer, d *bench.DeliverResult) {
	if d == nil {
		return
	}
	fmt.Fprintf(w, "\ndeliver: whenthen deliver (in this process) draining %d flow actions (%d partitions, in-memory broker,\n", d.Actions, d.Partitions)
	fmt.Fprintf(w, "Redis above) into local webhook receivers that verify every signature; concurrency %d per destination\n\n", d.Concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  one destination\t%.0f deliveries/s\tp50 %.0f ms, p99 %.0f ms from the backlog's production to the outcome\n",
		d.DeliveriesPerSec, d.OutcomeLatencyP50MS, d.OutcomeLatencyP99MS)
	fmt.Fprintf(tw, "  cpu per delivery\t%.0f µs + %.0f µs\tthis process (deliverer, broker, receivers) + redis-server; the machine %.0f %% busy meanwhile\n",
		d.CPUMicrosPerDelivery, d.RedisCPUMicrosPerDelivery, 100*d.MachineBusy)
	fmt.Fprintf(tw, "  three destinations\t%.0f deliveries/s\t%.0f per destination\n", d.ThreeDeliveriesPerSec, d.PerDestination)
	fmt.Fprintf(tw, "  + one answering in %.0f s\t%.0f per fast one\t%.1f %% of the above; the slow one had delivered %d, %.0f pending; input committed: %v\n",
		d.SlowAnswerSeconds, d.WithSlowPerFast, 100*d.WithSlowShare, d.SlowDelivered, d.SlowPendingAtEnd, d.CommittedBeforeSlow)
	tw.Flush()
}
