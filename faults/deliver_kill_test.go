//go:build linux

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/childproc"
	"github.com/whenthen/whenthen/internal/testenv"
)

// deliverSecret signs the crash test's webhooks; the children's logs must
// never hold it.
const deliverSecret = "whsec_c2lnbmluZy1zZWNyZXQtb2YtdGhlLWNyYXNoLXRlc3Q="

// TestDeliverKillUnderLoad SIGKILLs the `whenthen deliver` child at
// random moments while actions stream in (short: 3 kills, long: 10),
// restarting it each time, with two webhook destinations answering in
// 1–4 ms. Every action must reach both receivers and have a delivered
// outcome; a receiver may see an action again only if the process was
// killed after calling it and before writing its final mark (the window
// docs/guarantees.md names), and every copy carries the same webhook-id
// and body.
func TestDeliverKillUnderLoad(t *testing.T) {
	t.Parallel()
	start := time.Now()
	kills := pick(3, 10)
	n := pick(2000, 10000)
	// The stream lasts about 20 s (short) or a minute (long), so that the
	// kills, each followed by a restart that waits out the killed
	// member's session, fall while actions still stream in.
	rate := pick(100, 150)
	const dests = 2

	// The receivers: every call recorded with its time.
	type call struct {
		at   time.Time
		body string
	}
	var mu sync.Mutex
	calls := map[string][]call{} // destination/webhook-id → calls
	badSig := 0
	secrets, err := webhook.ParseSecrets(deliverSecret)
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: secrets, Keep: 1,
		Respond: func(r *http.Request, _ *sink.Request) int {
			time.Sleep(time.Duration(1+rand.IntN(4)) * time.Millisecond)
			return 200
		},
		OnReceive: func(r sink.Request) {
			mu.Lock()
			defer mu.Unlock()
			if r.SigErr != nil {
				badSig++
				return
			}
			k := strings.TrimPrefix(r.Path, "/") + "/" + r.ID
			calls[k] = append(calls[k], call{at: r.At, body: string(r.Body)})
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer hooks.Close()

	// Kafka, with the children's session timeout cut so that a killed
	// member leaves the group in seconds (to 6 s: two of kafka-go's 3 s
	// heartbeats; at 3 s a live member's session could run out between
	// two heartbeats and it looped on "Unknown Member ID"); Redis of its
	// own.
	kc := testenv.Kafka(t, actions.DefaultOutcomesTopic, actions.DefaultDLQTopic)
	if err := kc.CreateTopic(actions.DefaultActionsTopic, 4, nil); err != nil {
		t.Fatal(err)
	}
	kc.ControlKey(int16(kmsg.JoinGroup), func(r kmsg.Request) (kmsg.Response, error, bool) {
		jr := r.(*kmsg.JoinGroupRequest)
		jr.SessionTimeoutMillis = min(jr.SessionTimeoutMillis, 6000)
		jr.RebalanceTimeoutMillis = min(jr.RebalanceTimeoutMillis, 12000)
		return nil, nil, false
	})
	rs := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "deliver.yaml")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "kafka: {brokers: [%q]}\nredis: {url: %q}\ndestinations:\n", kc.Addrs()[0], "redis://"+rs.Addr()+"/0")
	for d := range dests {
		fmt.Fprintf(&cfg, "  - {name: hook-%d, workspaces: [acme], webhook: {url: \"%s/hook-%d\", secret_env: HOOK_SECRET}, timeout: 10s, concurrency: 8}\n", d, hooks.URL(), d)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// The actions, produced at rate in the background.
	acts := make([]actions.Action, n)
	msgs := make([]kafka.Message, n)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i := range acts {
		person := fmt.Sprintf("P-%d", i)
		ev := fmt.Sprintf("evt-%d", i)
		acts[i] = actions.Action{ActionID: actions.ActionID("acme", "kill-flow", ev, person), Workspace: "acme",
			AutomationID: "kill-flow", Type: actions.TypeFlow, Flow: &actions.Flow{ID: "f", PersonID: person},
			EventID: ev, EventTime: t0, FiredAt: t0, RunID: actions.RunID("acme", "kill-flow", ev)}
		msgs[i] = kafka.Message{Key: []byte(person), Value: acts[i].AppendJSON(nil)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		w := kc.Writer(t, actions.DefaultActionsTopic)
		for i := 0; i < n; i += 100 {
			if err := w.WriteMessages(ctx, msgs[i:min(i+100, n)]...); err != nil {
				if ctx.Err() == nil {
					t.Errorf("produce: %v", err)
				}
				return
			}
			time.Sleep(time.Until(start.Add(time.Duration(float64(i+100) / float64(rate) * float64(time.Second)))))
		}
	}()

	outcomes := func() int64 { return kc.Count(actions.DefaultOutcomesTopic) }
	type kill struct {
		at    time.Time
		marks map[string]bool // destination/action id → final mark present after the kill
	}
	var ks []kill
	var restarts []time.Duration
	var children []*instance
	for i := range kills {
		t0 := time.Now()
		before := outcomes()
		c := startDeliverChild(t, fmt.Sprintf("deliver-%d", i), cfgPath)
		children = append(children, c)
		// A restart waits for the group to drop the killed member (its
		// session, cut to 6 s) and to rebalance: seconds, or tens of
		// seconds on a loaded machine.
		// It must own partitions too: outcomes of the killed process can
		// still arrive, and a process killed while it joins the group
		// left kfake's group waiting for a member that never syncs.
		testenv.WaitFor(t, 2*time.Minute, "the restarted deliverer owning partitions and writing outcomes", func() bool {
			owns := strings.Contains(c.out.String(), "partition worker started")
			return owns && (outcomes() > before || outcomes() >= int64(n*dests))
		})
		restarts = append(restarts, time.Since(t0))
		time.Sleep(time.Duration(rand.IntN(800)) * time.Millisecond)
		c.kill()
		k := kill{at: time.Now(), marks: finalMarks(t, rdb, dests)}
		ks = append(ks, k)
		// The claims of the killed process: as if its leases (the
		// destination's timeout + 30 s) had run out.
		expired := expireDeliveryLeases(t, rdb, dests)
		t.Logf("kill %d: restarted in %v; %d outcomes, %d final marks, %d claims left, %d calls",
			i, restarts[len(restarts)-1].Round(time.Millisecond), outcomes(), len(k.marks), expired, hooks.Count())
	}
	final := startDeliverChild(t, "deliver-final", cfgPath)
	children = append(children, final)
	select {
	case <-produced:
	case <-time.After(3 * time.Minute):
		t.Fatal("producing the actions did not finish")
	}
	testenv.WaitFor(t, 2*time.Minute, "every action delivered to every destination", func() bool {
		return len(finalMarks(t, rdb, dests)) == n*dests
	})
	testenv.WaitFor(t, 30*time.Second, "every offset committed", func() bool {
		var sum int64
		for p := range 4 {
			sum += max(kc.Committed(delivery.DefaultGroup, actions.DefaultActionsTopic, int32(p)), 0)
		}
		return sum == int64(n)
	})
	if !final.term(20 * time.Second) {
		t.Error("the final deliverer did not exit cleanly on SIGTERM")
	}

	// Verify.
	delivered := map[string]int{}
	outcomeRecords := 0
	for _, m := range kc.ReadTopic(t, actions.DefaultOutcomesTopic) {
		var o actions.Outcome
		if err := json.Unmarshal(m.Value, &o); err != nil {
			t.Fatal(err)
		}
		outcomeRecords++
		if o.Status == actions.StatusDelivered {
			delivered[o.Destination+"/"+o.ActionID]++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	lost, repeats, explained, outcomeDups := 0, 0, 0, 0
	var unexplained []string
	for _, a := range acts {
		for d := range dests {
			k := fmt.Sprintf("hook-%d/%s", d, a.ActionID)
			cs := calls[k]
			if len(cs) == 0 || delivered[k] == 0 {
				lost++
				continue
			}
			if delivered[k] > 1 {
				outcomeDups += delivered[k] - 1
			}
			for _, c := range cs[1:] {
				if c.body != cs[0].body {
					t.Errorf("%s: a repeat with another body", k)
				}
			}
			if len(cs) == 1 {
				continue
			}
			repeats += len(cs) - 1
			// Explained: a kill after the first call, with no final mark
			// left by it.
			ok := false
			for _, kl := range ks {
				if cs[0].at.Before(kl.at) && !kl.marks[k] {
					ok = true
				}
			}
			if ok {
				explained += len(cs) - 1
			} else {
				unexplained = append(unexplained, k)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d deliveries lost (no call, or no delivered outcome)", lost)
	}
	if len(unexplained) > 0 {
		sort.Strings(unexplained)
		t.Errorf("%d repeated calls outside the documented window, e.g. %v", len(unexplained), unexplained[:min(5, len(unexplained))])
	}
	if badSig > 0 {
		t.Errorf("%d calls with a bad signature", badSig)
	}
	for _, c := range children {
		if strings.Contains(c.out.String(), strings.TrimPrefix(deliverSecret, "whsec_")) {
			t.Errorf("%s logged the webhook secret", c.name)
		}
	}
	sort.Slice(restarts, func(i, j int) bool { return restarts[i] < restarts[j] })
	report(t, start, "kills", kills, "actions", n, "deliveries", n*dests, "calls", hooks.Count(),
		"lost", lost, "repeated_calls", repeats, "repeats_in_window", explained, "repeats_outside_window", len(unexplained),
		"outcome_records", outcomeRecords, "duplicate_delivered_outcomes", outcomeDups,
		"restart_to_first_outcome_max", restarts[len(restarts)-1].Round(time.Millisecond))
}

// finalMarks returns the destination/action id of every final mark.
func finalMarks(t *testing.T, rdb *redis.Client, dests int) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	ctx := context.Background()
	for d := range dests {
		name := fmt.Sprintf("hook-%d", d)
		iter := rdb.Scan(ctx, 0, "wt:{d:"+name+"}:f:*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			out[name+"/"+k[strings.LastIndex(k, ":")+1:]] = true
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// expireDeliveryLeases makes every claimed job due now, as it is once its
// lease ends; only while no deliverer runs. It returns how many there were.
func expireDeliveryLeases(t *testing.T, rdb *redis.Client, dests int) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for d := range dests {
		res, err := expireDeliveryScript.Run(ctx, rdb, []string{fmt.Sprintf("wt:{d:hook-%d}:q", d)}, fmt.Sprintf("wt:{d:hook-%d}:j:", d)).Int()
		if err != nil {
			t.Fatal(err)
		}
		n += res
	}
	return n
}

var expireDeliveryScript = redis.NewScript(`
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HEXISTS', ARGV[1] .. id, 't') == 1 then
    redis.call('ZADD', KEYS[1], 0, id)
    n = n + 1
  end
end
return n
`)

// startDeliverChild starts a `whenthen deliver` child process and waits
// until it is ready.
func startDeliverChild(t *testing.T, name, cfg string) *instance {
	t.Helper()
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := &instance{t: t, name: name, out: &testenv.Buffer{}, metrics: "127.0.0.1:" + strconv.Itoa(port)}
	cmd := exec.Command(whenthenBinary(t), "deliver", "--config", cfg, "--metrics-listen", c.metrics,
		"--log-format", "json", "--log-level", "info", "--reload-interval", "-1s", "--shutdown-timeout", "10s", "--batch-size", "100")
	cmd.Stdout, cmd.Stderr = c.out, c.out
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "HOOK_SECRET=" + deliverSecret}
	if c.p, err = childproc.Start(cmd); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("%s output (last 30 lines):\n%s", name, tail(c.out.String(), 30))
		}
	})
	testenv.WaitFor(t, 30*time.Second, name+" ready", func() bool {
		select {
		case <-c.p.Done():
			t.Fatalf("%s exited during startup:\n%s", name, tail(c.out.String(), 30))
		default:
		}
		code, _ := httpGet("http://" + c.metrics + "/readyz")
		return code == 200
	})
	return c
}
