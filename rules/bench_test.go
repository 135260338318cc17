package rules

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// GenerateAutomations writes n automations in files of 1,000, with
// realistic conditions. With shared, they draw from a small pool of
// conditions (as real rule sets repeat themselves); otherwise every
// condition is distinct.
func GenerateAutomations(n int, shared bool) []Source {
	stages := []string{"Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"}
	var srcs []Source
	var b strings.Builder
	flush := func(i int) {
		srcs = append(srcs, Source{Name: fmt.Sprintf("gen-%06d.yaml", i), Data: []byte(b.String())})
		b.Reset()
	}
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			if i > 0 {
				flush(i)
			}
			fmt.Fprintf(&b, "workspace: ws-%d\nautomations:\n", i/1000)
		}
		k := i
		if shared {
			k = i % 50
		}
		stage := stages[k%len(stages)]
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - id: a-%d\n    when: {record: opportunity}\n    if: record.stage == %q && record.amount > %d\n    then: {brief: {kind: opportunity}}\n", i, stage, 1000*(k+1))
		case 1:
			fmt.Fprintf(&b, "  - id: a-%d\n    when: {record: account}\n    if: record.tier in [\"Enterprise\", \"Tier%d\"] && record.employee_count >= %d\n    then: {flow: {id: f-%d, who: record.primary_contact_id}}\n", i, k%7, k, i%10)
		case 2:
			fmt.Fprintf(&b, "  - id: a-%d\n    when: {record: lead}\n    if: record.source == \"web\" && record.score > %d\n    then: {flow: {id: nurture}}\n", i, k%100)
		case 3:
			fmt.Fprintf(&b, "  - id: a-%d\n    when: {record: opportunity}\n    if: '\"stage\" in changed && before.stage == %q && record.probability > 0.%d'\n    then: {brief: {kind: opportunity}}\n", i, stage, k%10)
		}
	}
	flush(n)
	return srcs
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		for _, shared := range []bool{false, true} {
			name := fmt.Sprintf("n=%d/shared=%v", n, shared)
			b.Run(name, func(b *testing.B) {
				if n == 100000 && testing.Short() {
					b.Skip("100k compile skipped in -short")
				}
				srcs := GenerateAutomations(n, shared)
				b.ReportAllocs()
				var heap uint64
				for i := 0; i < b.N; i++ {
					c, err := NewCompiler(CompilerOptions{})
					if err != nil {
						b.Fatal(err)
					}
					runtime.GC()
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					set, err := c.Compile(srcs)
					if err != nil {
						b.Fatal(err)
					}
					runtime.GC()
					runtime.ReadMemStats(&after)
					heap = after.HeapAlloc - before.HeapAlloc
					runtime.KeepAlive(set)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/automation")
				b.ReportMetric(float64(heap)/float64(n), "heap-B/automation")
			})
		}
	}
}
