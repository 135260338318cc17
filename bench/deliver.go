package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/daemon"
)

// DeliverOptions size the delivery benchmark.
type DeliverOptions struct {
	// Actions is the backlog of flow actions each run delivers; default
	// 100,000 (20,000 with Quick).
	Actions int
	// Partitions of the actions topic; default 4.
	Partitions int
	// Concurrency of each destination; default 64.
	Concurrency int
	// SlowAnswer is how long the slow destination of the isolation run
	// takes to answer; default 5s.
	SlowAnswer time.Duration
	// Rounds of the isolation comparison (three fast destinations, then
	// the same with a slow fourth), alternated; the best of each is
	// reported, to damp the machine's other load; default 2.
	Rounds int
}

func (o DeliverOptions) withDefaults(quick bool) DeliverOptions {
	if o.Actions == 0 {
		o.Actions = 100_000
		if quick {
			o.Actions = 20_000
		}
	}
	if o.Partitions == 0 {
		o.Partitions = 4
	}
	if o.Concurrency == 0 {
		o.Concurrency = 64
	}
	if o.SlowAnswer == 0 {
		o.SlowAnswer = 5 * time.Second
	}
	if o.Rounds == 0 {
		o.Rounds = 2
	}
	return o
}

// DeliverResult is `whenthen deliver` (in this process) draining a
// backlog of actions into local webhook receivers that verify every
// signature, with the broker (kfake) in this process and Redis the
// suite's.
type DeliverResult struct {
	Actions     int `json:"actions"`
	Partitions  int `json:"partitions"`
	Concurrency int `json:"concurrency"`
	// DeliveriesPerSec is one fast destination taking every action: from
	// the deliverer's start to the last delivered outcome.
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	// CPUMicrosPerDelivery is the CPU that run spent per delivery: this
	// process (the deliverer, and the broker and receivers it shares the
	// process with) and redis-server (0 when the suite did not start
	// it). Unlike a rate it does not depend on what else the machine
	// runs: 2 cores / this is the most the machine could deliver.
	CPUMicrosPerDelivery      float64 `json:"cpu_us_per_delivery"`
	RedisCPUMicrosPerDelivery float64 `json:"redis_cpu_us_per_delivery"`
	// MachineBusy is the share of the machine's CPU in use during that
	// run, by every process (others' included).
	MachineBusy float64 `json:"machine_busy"`
	// ThreeDeliveriesPerSec is three fast destinations each taking every
	// action (3 × Actions deliveries), and PerDestination their mean
	// rate, each from the start to its own last outcome.
	ThreeDeliveriesPerSec float64 `json:"three_deliveries_per_sec"`
	PerDestination        float64 `json:"per_destination_per_sec"`
	// With a fourth destination answering in SlowAnswer: the three fast
	// ones' mean rate, its share of PerDestination, and what the slow one
	// had delivered and had pending when the fast ones were done.
	SlowAnswerSeconds    float64 `json:"slow_answer_seconds"`
	WithSlowPerFast      float64 `json:"with_slow_per_fast_per_sec"`
	WithSlowShare        float64 `json:"with_slow_share"`
	SlowDelivered        int     `json:"slow_delivered"`
	SlowPendingAtEnd     float64 `json:"slow_pending_at_end"`
	CommittedBeforeSlow  bool    `json:"input_committed_before_slow_finished"`
	OutcomeLatencyP50MS  float64 `json:"outcome_latency_p50_ms"`
	OutcomeLatencyP99MS  float64 `json:"outcome_latency_p99_ms"`
	ReceiverCallsChecked int     `json:"receiver_calls_checked"`
}

// runDeliver runs the delivery benchmark: one fast destination; then
// Rounds times three fast destinations and the same three with a fourth
// that answers in SlowAnswer (what the three keep of their best rate is
// the isolation).
func runDeliver(ctx context.Context, o DeliverOptions, quick bool, r *benchRedis, log *slog.Logger, profileDir string) (*DeliverResult, error) {
	o = o.withDefaults(quick)
	res := &DeliverResult{Actions: o.Actions, Partitions: o.Partitions, Concurrency: o.Concurrency, SlowAnswerSeconds: o.SlowAnswer.Seconds()}
	topics := []string{actions.DefaultOutcomesTopic, actions.DefaultDLQTopic, "bench.actions.one"}
	for r := range o.Rounds {
		topics = append(topics, fmt.Sprintf("bench.actions.three-%d", r), fmt.Sprintf("bench.actions.slow-%d", r))
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(o.Partitions), kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(int32(o.Partitions), topics...))
	if err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	defer cluster.Close()
	const secret = "whsec_YmVuY2htYXJrLXNpZ25pbmctc2VjcmV0LTAxMjM0NQ=="
	secrets, err := webhook.ParseSecrets(secret)
	if err != nil {
		return nil, err
	}
	var badSig sync.Map
	fast, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: secrets, Keep: 1,
		OnReceive: func(r sink.Request) {
			if r.SigErr != nil {
				badSig.Store(r.ID, r.SigErr)
			}
		}})
	if err != nil {
		return nil, err
	}
	defer fast.Close()
	slow, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: secrets, Keep: 1,
		Respond: func(req *http.Request, _ *sink.Request) int {
			select {
			case <-req.Context().Done():
			case <-time.After(o.SlowAnswer):
			}
			return 200
		}})
	if err != nil {
		return nil, err
	}
	defer slow.Close()

	// The deliverer's own log only when it warns.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "deliver")
	run := func(name string, slowOne bool, dests int) (*deliverRun, error) {
		topic := "bench.actions." + name
		log.Info("deliver: producing the backlog", "run", name, "actions", o.Actions)
		if err := produceActions(ctx, cluster.ListenAddrs(), topic, o.Actions); err != nil {
			return nil, err
		}
		dr := &deliverRun{byDest: map[string]*destRun{}}
		var cfg strings.Builder
		cfg.WriteString("destinations:\n")
		for i := range dests {
			url := fast.URL() + fmt.Sprintf("/d%d", i)
			if slowOne && i == 0 {
				url = slow.URL() + "/slow"
			}
			fmt.Fprintf(&cfg, "  - {name: d%d, workspaces: [\"*\"], webhook: {url: %q, secret_env: S}, concurrency: %d, timeout: %s}\n",
				i, url, o.Concurrency, max(2*o.SlowAnswer, 10*time.Second))
			dr.byDest[fmt.Sprintf("d%d", i)] = &destRun{}
		}
		dir, err := os.MkdirTemp("", "whenthen-bench-deliver-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "deliver.yaml")
		if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
			return nil, err
		}
		stopProfile, err := startProfile(profileDir, "deliver-"+name)
		if err != nil {
			return nil, err
		}
		defer stopProfile()
		start := time.Now()
		cpu0 := cpuTime()
		rcpu0, rok0 := procCPU(r.PID)
		busy0, total0, mok0 := machineCPU()
		svc, err := delivery.New(delivery.Options{
			Kafka: daemon.KafkaOptions{Brokers: cluster.ListenAddrs(), Group: "bench-" + name, ActionsTopic: topic,
				MaxWait: 500 * time.Millisecond, CommitInterval: 50 * time.Millisecond, LagInterval: -1},
			Redis:      daemon.RedisOptions{URL: r.URL, Prefix: r.Prefix + "deliver-" + name + ":"},
			ConfigFile: path, Env: func(string) string { return secret },
			MetricsListen: "127.0.0.1:0", Logger: quiet, ShutdownTimeout: 5 * time.Second,
			ReloadInterval: -1, StatsInterval: time.Hour,
			OnOutcome: dr.record,
		})
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(rctx) }()
		defer func() {
			cancel()
			<-done
			_ = svc.Close()
		}()
		// Until every fast destination has every action.
		var waitFor []string
		for i := range dests {
			if !(slowOne && i == 0) {
				waitFor = append(waitFor, fmt.Sprintf("d%d", i))
			}
		}
		deadline := time.Now().Add(10 * time.Minute)
		for !dr.complete(waitFor, o.Actions) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("run %s: not every delivery done in time", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		dr.elapsed = time.Since(start)
		dr.cpu = cpuTime() - cpu0
		if rcpu1, ok := procCPU(r.PID); ok && rok0 {
			dr.redisCPU = rcpu1 - rcpu0
		}
		if busy1, total1, ok := machineCPU(); ok && mok0 && total1 > total0 {
			dr.machineBusy = float64(busy1-busy0) / float64(total1-total0)
		}
		// The slow destination still delivers (and records) meanwhile.
		dr.mu.Lock()
		for _, d := range dr.byDest {
			if d.n > 0 {
				d.rate = float64(d.n) / d.last.Sub(start).Seconds()
			}
		}
		dr.mu.Unlock()
		if slowOne {
			var committed int64
			for p := range o.Partitions {
				if c, ok := cluster.GroupInfo("bench-" + name).Commits[topic][int32(p)]; ok {
					committed += c.Offset
				}
			}
			dr.committed = committed == int64(o.Actions)
			svc.UpdateStats(ctx)
			dr.slowPending = gaugeOf(svc, "whenthen_delivery_pending", "d0")
			dr.mu.Lock()
			dr.slowDelivered = dr.byDest["d0"].n
			dr.mu.Unlock()
		}
		return dr, nil
	}

	one, err := run("one", false, 1)
	if err != nil {
		return nil, err
	}
	res.DeliveriesPerSec = one.byDest["d0"].rate
	res.CPUMicrosPerDelivery = float64(one.cpu.Microseconds()) / float64(o.Actions)
	res.RedisCPUMicrosPerDelivery = float64(one.redisCPU.Microseconds()) / float64(o.Actions)
	res.MachineBusy = one.machineBusy
	res.OutcomeLatencyP50MS, res.OutcomeLatencyP99MS = one.latency()
	log.Info("deliver: one destination", "deliveries_per_sec", int(res.DeliveriesPerSec))
	var withSlow *deliverRun
	for r := range o.Rounds {
		three, err := run(fmt.Sprintf("three-%d", r), false, 3)
		if err != nil {
			return nil, err
		}
		if rate := three.meanRate("d0", "d1", "d2"); rate > res.PerDestination {
			res.PerDestination = rate
			res.ThreeDeliveriesPerSec = float64(3*o.Actions) / three.elapsed.Seconds()
		}
		ws, err := run(fmt.Sprintf("slow-%d", r), true, 4)
		if err != nil {
			return nil, err
		}
		if rate := ws.meanRate("d1", "d2", "d3"); withSlow == nil || rate > res.WithSlowPerFast {
			withSlow, res.WithSlowPerFast = ws, rate
		}
	}
	if res.PerDestination > 0 {
		res.WithSlowShare = res.WithSlowPerFast / res.PerDestination
	}
	res.SlowDelivered = withSlow.slowDelivered
	res.SlowPendingAtEnd = withSlow.slowPending
	res.CommittedBeforeSlow = withSlow.committed
	res.ReceiverCallsChecked = fast.Count()
	n := 0
	badSig.Range(func(any, any) bool { n++; return true })
	if n > 0 {
		return nil, fmt.Errorf("%d calls failed signature verification", n)
	}
	log.Info("deliver: with a slow destination", "fast_per_sec", int(res.WithSlowPerFast), "share", res.WithSlowShare)
	return res, nil
}

// deliverRun follows one run's outcomes.
type deliverRun struct {
	mu            sync.Mutex
	byDest        map[string]*destRun
	lat           []float64 // ms from fired_at to the outcome
	elapsed       time.Duration
	committed     bool
	slowPending   float64
	slowDelivered int
	cpu, redisCPU time.Duration
	machineBusy   float64
}

type destRun struct {
	n    int
	last time.Time
	rate float64
}

func (d *deliverRun) record(o actions.Outcome) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if o.Status != actions.StatusDelivered {
		return
	}
	dr := d.byDest[o.Destination]
	if dr == nil {
		return
	}
	dr.n++
	dr.last = now
	if len(d.lat) < 200_000 {
		d.lat = append(d.lat, float64(now.Sub(firedAt).Microseconds())/1000)
	}
}

func (d *deliverRun) complete(names []string, n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range names {
		if d.byDest[name].n < n {
			return false
		}
	}
	return true
}

func (d *deliverRun) meanRate(names ...string) float64 {
	var sum float64
	for _, n := range names {
		sum += d.byDest[n].rate
	}
	return sum / float64(len(names))
}

// latency returns the p50 and p99 of the time from the backlog's
// production to each outcome: while draining a backlog it grows with the
// position in it, so it says how the backlog drained, not a per-call
// latency.
func (d *deliverRun) latency() (p50, p99 float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.lat) == 0 {
		return 0, 0
	}
	s := append([]float64(nil), d.lat...)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100]
}

// firedAt is the fired_at of the benchmark's actions.
var firedAt = time.Now()

// produceActions writes n flow actions to topic.
func produceActions(ctx context.Context, brokers []string, topic string, n int) error {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 1000,
		BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, BatchBytes: 16 << 20}
	defer w.Close()
	const chunk = 5000
	msgs := make([]kafka.Message, 0, chunk)
	for i := 0; i < n; i += chunk {
		msgs = msgs[:0]
		for j := i; j < min(i+chunk, n); j++ {
			person := fmt.Sprintf("P-%d", j)
			ev := fmt.Sprintf("evt-%d", j)
			a := actions.Action{ActionID: actions.ActionID("bench", "bench-flow", ev, person), Workspace: "bench",
				AutomationID: "bench-flow", Type: actions.TypeFlow, Flow: &actions.Flow{ID: "bench", PersonID: person},
				EventID: ev, EventTime: firedAt, FiredAt: firedAt, RunID: actions.RunID("bench", "bench-flow", ev)}
			msgs = append(msgs, kafka.Message{Key: []byte(person), Value: a.AppendJSON(nil)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("producing actions: %w", err)
		}
	}
	return nil
}

// gaugeOf reads a gauge of the deliverer for one destination.
func gaugeOf(svc *delivery.Service, name, dest string) float64 {
	mfs, err := svc.Gatherer().Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "destination" && l.GetValue() == dest {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// deliverGoals are the targets for delivery.
func deliverGoals(d *DeliverResult) []Goal {
	return []Goal{
		{Name: "deliver: deliveries/s to one fast local receiver", Target: ">= 10000", Value: d.DeliveriesPerSec, Unit: "deliveries/s", Met: d.DeliveriesPerSec >= 10_000},
		{Name: "deliver: the other destinations' throughput with one answering in 5 s", Target: ">= 90%", Value: 100 * d.WithSlowShare, Unit: "%", Met: d.WithSlowShare >= 0.9},
	}
}
