package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/bench"
)

func TestSelectScenariosDeliver(t *testing.T) {
	for list, noDeliver := range map[string]bool{"deliver": false, "e2e,deliver": false, "e2e": true, "match,load": true, "all": false} {
		var o bench.Options
		if err := selectScenarios(&o, list); err != nil {
			t.Fatal(err)
		}
		if o.NoDeliver != noDeliver || (list == "deliver" && (!o.NoMatch || !o.NoE2E || !o.NoLoad)) {
			t.Errorf("%q: %+v", list, o)
		}
	}
}

func TestPrintDeliverBench(t *testing.T) {
	var b bytes.Buffer
	printDeliverBench(&b, nil)
	if b.Len() != 0 {
		t.Errorf("printed %q without results", b.String())
	}
	printDeliverBench(&b, &bench.DeliverResult{Actions: 100000, Partitions: 4, Concurrency: 64, DeliveriesPerSec: 12345,
		ThreeDeliveriesPerSec: 15000, PerDestination: 5000, SlowAnswerSeconds: 5, WithSlowPerFast: 4800, WithSlowShare: 0.96,
		SlowPendingAtEnd: 99990, SlowDelivered: 10, CommittedBeforeSlow: true})
	for _, want := range []string{"draining 100000 flow actions", "one destination         12345 deliveries/s",
		"+ one answering in 5 s  4800 per fast one ", "96.0 % of the above", "input committed: true"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
