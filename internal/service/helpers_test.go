package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/service"
	"github.com/whenthen/whenthen/internal/testenv"
)

const (
	inputTopic = ingest.DefaultTopic
	group      = "whenthen-svc-test"
)

// newCluster starts kfake with the output topics (one partition each) and
// the input topic with the given partitions.
func newCluster(t testing.TB, partitions int) *testenv.Cluster {
	t.Helper()
	c := testenv.Kafka(t, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic)
	if err := c.CreateTopic(inputTopic, int32(partitions), nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// options returns service options for a test: the cluster, the shared test
// Redis under a prefix of the test's own (or redisURL), rules under
// rulesDir, short Kafka timings and a port of 0.
func options(t testing.TB, c *testenv.Cluster, rulesDir, redisURL string) service.Options {
	t.Helper()
	prefix := "wt:"
	if redisURL == "" {
		_, prefix = testenv.Redis(t)
		redisURL = testenv.RedisURL(t)
	}
	return service.Options{
		Kafka: daemon.KafkaOptions{
			Brokers:           c.Addrs(),
			Group:             group,
			MaxWait:           100 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond,
			SessionTimeout:    2 * time.Second,
			RebalanceTimeout:  2 * time.Second,
			CommitInterval:    50 * time.Millisecond,
			LagInterval:       -1,
			MetadataTTL:       time.Second,
		},
		Redis:           daemon.RedisOptions{URL: redisURL, Prefix: prefix},
		Rules:           []string{rulesDir},
		MetricsListen:   "127.0.0.1:0",
		Logger:          testenv.Logger(t),
		ShutdownTimeout: 8 * time.Second,
		ReloadInterval:  -1,
		TimerInterval:   100 * time.Millisecond,
	}
}

// start builds and runs a service; it is closed at cleanup (or by the
// returned stop, which checks that Run ended cleanly).
func start(t testing.TB, o service.Options) (*service.Service, func()) {
	t.Helper()
	s, err := service.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// event builds an input message from a JSON envelope; the key is the
// record id, or key when the envelope has no record.
func event(key, envelope string) kafka.Message {
	return kafka.Message{Key: []byte(key), Value: []byte(envelope)}
}

// oppEvent is an opportunity update: event evt-N about record opp-N.
func oppEvent(n, amount int) kafka.Message {
	return event(fmt.Sprintf("opp-%d", n), fmt.Sprintf(`{"id":"evt-%d","type":"record.updated","time":"2026-11-24T10:00:00Z",`+
		`"object":"opportunity","record":{"id":"opp-%d","amount":%d,"owner_id":"u-7"}}`, n, n, amount))
}

// allCommitted reports whether the group committed every partition of the
// input topic to its end.
func allCommitted(c *testenv.Cluster) bool {
	gi := c.GroupInfo(group)
	if gi == nil {
		return false
	}
	for _, pi := range c.PartitionInfos(inputTopic) {
		if gi.Commits[inputTopic][pi.Partition].Offset != pi.HighWatermark {
			return false
		}
	}
	return true
}

// action is the part of an action record tests compare.
type action struct {
	ActionID     string         `json:"action_id"`
	Workspace    string         `json:"workspace"`
	AutomationID string         `json:"automation_id"`
	Type         string         `json:"type"`
	EventID      string         `json:"event_id"`
	RecordID     string         `json:"record_id"`
	Brief        *actions.Brief `json:"brief,omitempty"`
	Flow         *actions.Flow  `json:"flow,omitempty"`
}

// run is the part of a run-history record tests compare.
type run struct {
	AutomationID string   `json:"automation_id"`
	EventID      string   `json:"event_id"`
	Outcome      string   `json:"outcome"`
	Reason       string   `json:"reason"`
	ActionIDs    []string `json:"action_ids"`
}

func readActions(t testing.TB, c *testenv.Cluster) []action {
	t.Helper()
	var out []action
	for _, m := range c.ReadTopic(t, actions.DefaultActionsTopic) {
		var a action
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatalf("action %s: %v", m.Value, err)
		}
		out = append(out, a)
	}
	return out
}

func readRuns(t testing.TB, c *testenv.Cluster) []run {
	t.Helper()
	var out []run
	for _, m := range c.ReadTopic(t, actions.DefaultRunsTopic) {
		var r run
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("run %s: %v", m.Value, err)
		}
		out = append(out, r)
	}
	return out
}

// actionCounts counts action records by action id.
func actionCounts(t testing.TB, c *testenv.Cluster) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, a := range readActions(t, c) {
		n[a.ActionID]++
	}
	return n
}

// get fetches url and returns the status and body.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
