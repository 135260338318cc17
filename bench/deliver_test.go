package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestRunDeliver runs the delivery benchmark on a small backlog and
// checks that every figure is filled and the slow destination held up
// nothing.
func TestRunDeliver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := startRedis(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := runDeliver(ctx, DeliverOptions{Actions: 1000, Partitions: 2, Concurrency: 16, SlowAnswer: time.Second, Rounds: 1},
		false, r, slog.New(slog.DiscardHandler), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.DeliveriesPerSec <= 0 || res.ThreeDeliveriesPerSec <= 0 || res.PerDestination <= 0 || res.WithSlowPerFast <= 0 ||
		res.OutcomeLatencyP50MS <= 0 || res.OutcomeLatencyP99MS < res.OutcomeLatencyP50MS || res.CPUMicrosPerDelivery <= 0 ||
		res.MachineBusy <= 0 || res.MachineBusy > 1 {
		t.Errorf("rates %+v", *res)
	}
	if !res.CommittedBeforeSlow || res.SlowPendingAtEnd < 900 || res.SlowDelivered > 100 {
		t.Errorf("the slow destination: %d delivered, %v pending, input committed %v", res.SlowDelivered, res.SlowPendingAtEnd, res.CommittedBeforeSlow)
	}
	// one + three + three fast destinations, every call verified.
	if res.ReceiverCallsChecked < 7*1000 {
		t.Errorf("%d calls checked", res.ReceiverCallsChecked)
	}
	if g := deliverGoals(res); len(g) != 2 || g[1].Value != 100*res.WithSlowShare {
		t.Errorf("goals %+v", g)
	}
}
