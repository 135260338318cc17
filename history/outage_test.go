package history_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/faults"
	"github.com/whenthen/whenthen/history"
	"github.com/whenthen/whenthen/history/store/storetest"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestDatabaseOutage cuts the service off from PostgreSQL (through a TCP
// proxy it cannot tell from the server) while runs arrive: the consumer
// stalls without committing their offsets, /readyz says why, and once
// the database is back every run is stored, once, and the offsets move
// on, without a restart.
func TestDatabaseOutage(t *testing.T) {
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faults.NewProxy("127.0.0.1:0", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	u.Host = proxy.Addr()
	e := start(t, u.String(), nil, func(o *history.Options) { o.Kafka.Group = "history-outage" })

	now := time.Now().UTC()
	batch := func(from, n int) []any {
		var out []any
		for i := from; i < from+n; i++ {
			out = append(out, storetest.NewRun("acme", "closed-won-brief", fmt.Sprintf("evt-%d", i), "opportunity",
				fmt.Sprintf("O-%d", i%7), now.Add(time.Duration(i)*time.Second), "completed", ""))
		}
		return out
	}
	e.produce(actions.DefaultRunsTopic, batch(0, 10)...)
	e.waitRuns("acme", 10)
	testenv.WaitFor(t, 30*time.Second, "the first batch's offsets to be committed", func() bool {
		return e.kafka.Committed("history-outage-runs", actions.DefaultRunsTopic, 0) == 10
	})

	proxy.Cut()
	e.produce(actions.DefaultRunsTopic, batch(10, 25)...)
	var body string
	testenv.WaitFor(t, 30*time.Second, "/readyz to report the outage", func() bool {
		code, b := e.get("", "/readyz")
		body = string(b)
		return code == http.StatusServiceUnavailable && (strings.Contains(body, "keeps failing") || strings.Contains(body, "database"))
	})
	t.Logf("/readyz during the outage: %s", strings.TrimSpace(body))
	// Stalled: the new runs' offsets are not committed.
	time.Sleep(500 * time.Millisecond)
	if got := e.kafka.Committed("history-outage-runs", actions.DefaultRunsTopic, 0); got != 10 {
		t.Fatalf("committed offset %d during the outage, want 10 (nothing past what is stored)", got)
	}
	if v := testenv.Metric(t, e.svc.Gatherer(), "whenthen_history_stalled_partitions"); v < 1 {
		t.Fatalf("stalled partitions %v during the outage", v)
	}
	if v := testenv.Metric(t, e.svc.Gatherer(), "whenthen_history_db_errors_total"); v < 1 {
		t.Fatalf("database errors %v during the outage", v)
	}

	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	runs := e.waitRuns("acme", 35)
	if len(runs) != 35 {
		t.Fatalf("%d runs after the outage, want 35", len(runs))
	}
	testenv.WaitFor(t, 30*time.Second, "the offsets to be committed after the outage", func() bool {
		return e.kafka.Committed("history-outage-runs", actions.DefaultRunsTopic, 0) == 35
	})
	testenv.WaitFor(t, 30*time.Second, "/readyz to recover", func() bool {
		code, _ := e.get("", "/readyz")
		return code == http.StatusOK
	})
	if v := testenv.Metric(t, e.svc.Gatherer(), "whenthen_history_stalled_partitions"); v != 0 {
		t.Fatalf("stalled partitions %v after the outage", v)
	}
}
