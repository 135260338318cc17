package delivery_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestSlowDestinationHoldsNoOther sends every action to four
// destinations, one of which answers after a second: the three others
// deliver everything at their own pace, and the input offsets are
// committed, while the slow one still works through its queue in Redis.
func TestSlowDestinationHoldsNoOther(t *testing.T) {
	const n = 300
	secrets := must(webhook.ParseSecrets(hookSecret))
	slow, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: secrets, Respond: func(r *http.Request, _ *sink.Request) int {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
		return 200
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	var cfg strings.Builder
	cfg.WriteString("destinations:\n")
	fmt.Fprintf(&cfg, "  - {name: slow, workspaces: [\"*\"], webhook: {url: %q, secret_env: HOOK_SECRET}, timeout: 5s, concurrency: 4}\n", slow.URL()+"/slow")
	for i := range 3 {
		fmt.Fprintf(&cfg, "  - {name: fast-%d, workspaces: [\"*\"], webhook: {url: %q, secret_env: HOOK_SECRET}, concurrency: 8}\n", i, fast.URL()+fmt.Sprintf("/fast-%d", i))
	}
	w := newWorld(t, cfg.String(), nil)
	acts := make([]actions.Action, n)
	for i := range acts {
		acts[i] = flowAction("acme", "f", fmt.Sprintf("evt-%d", i), "flow", fmt.Sprintf("P-%d", i), "", "")
	}
	start := time.Now()
	w.produce(acts...)
	fastDone := func() int {
		c := 0
		for _, o := range w.all() {
			if strings.HasPrefix(o.Destination, "fast-") && o.Status == actions.StatusDelivered {
				c++
			}
		}
		return c
	}
	testenv.WaitFor(t, 20*time.Second, "every fast delivery", func() bool { return fastDone() == 3*n })
	took := time.Since(start)
	testenv.WaitFor(t, 5*time.Second, "every action's offset committed", func() bool {
		return w.kafka.Committed(delivery.DefaultGroup, actions.DefaultActionsTopic, 0) == n
	})
	w.svc.UpdateStats(t.Context())
	slowDone := 0
	for _, o := range w.all() {
		if o.Destination == "slow" {
			slowDone++
		}
	}
	pending := testenv.Metric(t, w.svc.Gatherer(), "whenthen_delivery_pending", "destination", "slow")
	oldest := testenv.Metric(t, w.svc.Gatherer(), "whenthen_delivery_oldest_pending_seconds", "destination", "slow")
	t.Logf("fast: %d deliveries in %v; slow: %d delivered, %v pending, oldest %.1fs", 3*n, took.Round(time.Millisecond), slowDone, pending, oldest)
	if slowDone > n/2 {
		t.Fatalf("the slow destination delivered %d of %d meanwhile: it was not slow", slowDone, n)
	}
	if pending < float64(n-slowDone-8) || oldest <= 0 {
		t.Errorf("pending %v (oldest %.1fs), want the slow destination's backlog (%d)", pending, oldest, n-slowDone)
	}
	if got := testenv.Metric(t, w.svc.Gatherer(), "whenthen_delivery_pending", "destination", "fast-1"); got != 0 {
		t.Errorf("fast-1 has %v pending", got)
	}
}
