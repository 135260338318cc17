package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/bench/gen"
	"github.com/whenthen/whenthen/ingest"
)

// E2EOptions size the end-to-end measurement.
type E2EOptions struct {
	// Workload is the service's rule set; default 1,000 automations in
	// one workspace.
	Workload gen.Workload
	// Events is the backlog each consumer drains to find its maximum
	// rate; default 200,000.
	Events int
	// Duration is how long events are produced at half the service's
	// maximum rate to measure latency; default 20s.
	Duration time.Duration
	// Partitions of every topic; default 4.
	Partitions int
}

// E2EResult is whenthen broker to broker, beside two passthroughs
// (passthrough.go) on the same broker in the same run. The broker (kfake),
// the load generator and the consumer of actions run in the suite's
// process; the service and each passthrough in a process of their own;
// Redis in its own.
type E2EResult struct {
	Automations int `json:"automations"`
	Workspaces  int `json:"workspaces"`
	Partitions  int `json:"partitions"`
	// Events is the backlog drained by each consumer.
	Events int `json:"events"`
	// EventsPerSec is the service's rate draining the backlog: from its
	// consumer group being assigned every partition to its last offset
	// commit (outputs of every event acknowledged by Kafka).
	EventsPerSec float64 `json:"events_per_sec"`
	// PassthroughEventsPerSec is the same for the kafka-go passthrough
	// (passthrough.go): the service's consumer, partition workers,
	// batching and commit cadence, and its producer settings, writing
	// PassthroughOutputsPerEvent copies of the events it reads; nothing
	// else.
	PassthroughEventsPerSec float64 `json:"passthrough_events_per_sec"`
	// FranzEventsPerSec is the same for the franz-go passthrough: the
	// ceiling of a Go consumer and producer on this machine.
	FranzEventsPerSec float64 `json:"franz_passthrough_events_per_sec"`
	// PassthroughOutputsPerEvent is what both passthroughs write per
	// event: the service's actions and runs per event on the backlog.
	PassthroughOutputsPerEvent float64 `json:"passthrough_outputs_per_event"`
	// Ratio is EventsPerSec / PassthroughEventsPerSec; FranzRatio
	// EventsPerSec / FranzEventsPerSec.
	Ratio      float64 `json:"ratio"`
	FranzRatio float64 `json:"franz_ratio"`
	// ActionsPerEvent and RunsPerEvent of the backlog.
	ActionsPerEvent float64 `json:"actions_per_event"`
	RunsPerEvent    float64 `json:"runs_per_event"`
	// LatencyRate is the rate events were produced at (half of
	// EventsPerSec) while latency was measured, for LatencySeconds;
	// LatencyEvents were produced and LatencySamples of them produced an
	// action.
	LatencyRate    float64 `json:"latency_rate"`
	LatencySeconds float64 `json:"latency_seconds"`
	LatencyEvents  int     `json:"latency_events"`
	LatencySamples int     `json:"latency_samples"`
	// P50MS, P99MS and MaxMS are the latencies, in milliseconds, from an
	// event's produce call to its first action record arriving at a
	// consumer of the actions topic (matched by event_id).
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	// Service is what the service's metrics say of the same time.
	Service ServiceStats `json:"service"`
	// PassthroughP50MS and PassthroughP99MS are the kafka-go
	// passthrough's latencies at the same rate, afterwards: from the
	// produce call to the copy of the event read, for the events it
	// copies.
	PassthroughP50MS float64 `json:"passthrough_p50_ms"`
	PassthroughP99MS float64 `json:"passthrough_p99_ms"`
	// MachineCPUBusy is the share of the machine's CPU time (all cores)
	// that was busy while latency was measured; SuiteCPUCores what this
	// process (broker, load generator, consumer of actions) used of it,
	// in cores.
	MachineCPUBusy float64 `json:"machine_cpu_busy"`
	SuiteCPUCores  float64 `json:"suite_cpu_cores"`
	// RedisCPUCores is redis-server's share, in cores; 0 when the suite
	// did not start it.
	RedisCPUCores float64 `json:"redis_cpu_cores,omitempty"`
}

// ServiceStats come from the service's /metrics, over the latency
// measurement.
type ServiceStats struct {
	// CPUCores is the service process's CPU time over wall time
	// (process_cpu_seconds_total); GCCycles its garbage collections.
	CPUCores float64 `json:"cpu_cores"`
	GCCycles float64 `json:"gc_cycles"`
	// EventP50MS and EventP99MS bound the service's own latency of every
	// event, from its Kafka timestamp (the produce call) to its batch's
	// outputs acknowledged (whenthen_event_latency_seconds): the upper
	// bounds of the buckets holding the percentiles.
	EventP50MS float64 `json:"event_p50_ms"`
	EventP99MS float64 `json:"event_p99_ms"`
	// BatchEvents is the mean events per batch of a partition; BatchMS
	// the mean batch (decode, engine, publish, state commit); EngineMS
	// the mean Engine.Process; ProduceMS the mean produce call of
	// actions, to Kafka's acknowledgement (made by the batches that have
	// some). A partition's next batch starts when its last one is done.
	BatchEvents float64 `json:"batch_events"`
	BatchMS     float64 `json:"batch_ms"`
	EngineMS    float64 `json:"engine_ms"`
	ProduceMS   float64 `json:"produce_ms"`
	// BatchP99MS, EngineP99MS and ProduceP99MS bound the 99th
	// percentiles of the same (bucket upper bounds): where a tail of
	// EventP99MS comes from, if from there.
	BatchP99MS   float64 `json:"batch_p99_ms"`
	EngineP99MS  float64 `json:"engine_p99_ms"`
	ProduceP99MS float64 `json:"produce_p99_ms"`
	// Retries counts batch steps retried, produce calls retried and
	// failed fetches: each waits a backoff.
	Retries float64 `json:"retries"`
}

func (o E2EOptions) withDefaults() E2EOptions {
	if o.Workload.Automations == 0 {
		o.Workload = gen.Workload{Automations: 1000, Workspaces: 1, Seed: 1}
	}
	if o.Events == 0 {
		o.Events = 200_000
	}
	if o.Duration == 0 {
		o.Duration = 20 * time.Second
	}
	if o.Partitions == 0 {
		o.Partitions = 4
	}
	return o
}

const (
	e2eServiceGroup            = "whenthen-bench"
	e2ePassthroughGroup        = "bench-passthrough"
	e2ePassthroughLatencyGroup = "bench-passthrough-latency"
	e2ePassthroughTopic        = "bench.passthrough"
)

// e2e is one end-to-end run's broker.
type e2e struct {
	cluster *kfake.Cluster
	brokers []string
}

func runE2E(ctx context.Context, o E2EOptions, r *benchRedis, start ChildCommand, stderr io.Writer, log *slog.Logger, profileDir string) (*E2EResult, error) {
	o = o.withDefaults()
	dir, err := os.MkdirTemp("", "whenthen-bench-e2e-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := o.Workload.WriteRules(dir); err != nil {
		return nil, err
	}
	// The broker stays in this process, with the load generator; the
	// passthroughs and the service run in processes of their own, as they
	// would in production, each with its own heap and garbage collector.
	x := &e2e{}
	x.cluster, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(o.Partitions),
		kfake.SeedTopics(int32(o.Partitions), ingest.DefaultTopic, actions.DefaultActionsTopic,
			actions.DefaultRunsTopic, actions.DefaultDLQTopic, e2ePassthroughTopic))
	if err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	defer x.cluster.Close()
	x.brokers = x.cluster.ListenAddrs()
	res := &E2EResult{Automations: o.Workload.Automations, Workspaces: o.Workload.NumWorkspaces(),
		Partitions: o.Partitions, Events: o.Events}

	// The backlog, produced before either consumer starts.
	log.Info("e2e: producing the backlog", "events", o.Events)
	if err := x.produce(ctx, messages(o.Workload.Events(o.Events))); err != nil {
		return nil, fmt.Errorf("producing the backlog: %w", err)
	}
	hwm := x.highWatermarks(ingest.DefaultTopic)

	// The service drains it first; then each passthrough does, writing
	// what the service wrote per event.
	log.Info("e2e: service draining the backlog")
	svc, err := startServer(ctx, start, childRequest{Mode: modeService, Brokers: x.brokers, Group: e2eServiceGroup,
		Dir: dir, RedisURL: r.URL, Prefix: r.Prefix + "e2e:", ProfileDir: profileDir}, stderr)
	if err != nil {
		return nil, err
	}
	defer svc.close(30 * time.Second)
	d, err := x.drain(ctx, e2eServiceGroup, hwm, svc, "e2e-service")
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	res.EventsPerSec = float64(o.Events) / d.Seconds()
	res.ActionsPerEvent = float64(x.total(actions.DefaultActionsTopic)) / float64(o.Events)
	res.RunsPerEvent = float64(x.total(actions.DefaultRunsTopic)) / float64(o.Events)
	res.PassthroughOutputsPerEvent = res.ActionsPerEvent + res.RunsPerEvent

	// Latency at half the maximum rate.
	rate := res.EventsPerSec / 2
	n := max(1, int(rate*o.Duration.Seconds()))
	log.Info("e2e: latency at half the maximum rate", "rate", int(rate), "events", n, "duration", o.Duration)
	raws := o.Workload.Events(o.Events + n)[o.Events:]
	before, err := scrape(ctx, svc.info.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("service metrics: %w", err)
	}
	if err := svc.send("profile e2e-service-latency"); err != nil {
		return nil, err
	}
	busy0, total0, _ := machineCPU()
	cpu0 := cpuTime()
	rcpu0, rok0 := procCPU(r.PID)
	lat, err := x.latency(ctx, raws, rate, latencyTarget{srv: svc, group: e2eServiceGroup,
		topic: actions.DefaultActionsTopic, eventID: actionEventID})
	if err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	res.SuiteCPUCores = (cpuTime() - cpu0).Seconds() / lat.measured.Seconds()
	if rcpu1, rok1 := procCPU(r.PID); rok0 && rok1 {
		res.RedisCPUCores = (rcpu1 - rcpu0).Seconds() / lat.measured.Seconds()
	}
	if busy1, total1, ok := machineCPU(); ok && total1 > total0 {
		res.MachineCPUBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	if err := svc.send("stop"); err != nil {
		return nil, err
	}
	after, err := scrape(ctx, svc.info.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("service metrics: %w", err)
	}
	res.Service = serviceStats(before, after, lat.measured)
	res.LatencyRate, res.LatencySeconds, res.LatencyEvents = lat.rate, lat.elapsed.Seconds(), n
	res.LatencySamples = len(lat.samples)
	if len(lat.samples) > 0 {
		res.P50MS = ms(percentile(lat.samples, 0.50))
		res.P99MS = ms(percentile(lat.samples, 0.99))
		res.MaxMS = ms(lat.samples[len(lat.samples)-1])
	}
	if err := svc.close(30 * time.Second); err != nil {
		return nil, fmt.Errorf("stopping the service: %w", err)
	}

	// The passthroughs drain the same backlog (events produced since are
	// beyond the offsets they are timed to).
	for _, c := range []struct {
		client string
		rate   *float64
	}{{clientKafkaGo, &res.PassthroughEventsPerSec}, {clientFranzGo, &res.FranzEventsPerSec}} {
		log.Info("e2e: passthrough draining the backlog", "client", c.client)
		group := e2ePassthroughGroup + "-" + c.client
		pt, err := startServer(ctx, start, childRequest{Mode: modePassthrough, Brokers: x.brokers, Group: group,
			Client: c.client, OutputsPerEvent: res.PassthroughOutputsPerEvent, ProfileDir: profileDir}, stderr)
		if err != nil {
			return nil, err
		}
		d, err := x.drain(ctx, group, hwm, pt, "e2e-passthrough-"+c.client)
		if cerr := pt.close(15 * time.Second); err == nil && cerr != nil {
			err = fmt.Errorf("stopping: %w", cerr)
		}
		if err != nil {
			return nil, fmt.Errorf("%s passthrough: %w", c.client, err)
		}
		*c.rate = float64(o.Events) / d.Seconds()
	}
	res.Ratio = res.EventsPerSec / res.PassthroughEventsPerSec
	res.FranzRatio = res.EventsPerSec / res.FranzEventsPerSec

	// The kafka-go passthrough's latency at the same rate: what the
	// broker and the service's consumer and producer cost on this
	// machine.
	log.Info("e2e: passthrough latency at the same rate", "rate", int(rate))
	pt, err := startServer(ctx, start, childRequest{Mode: modePassthrough, Brokers: x.brokers,
		Group: e2ePassthroughLatencyGroup, AtEnd: true, Client: clientKafkaGo, OutputsPerEvent: res.PassthroughOutputsPerEvent}, stderr)
	if err != nil {
		return nil, err
	}
	defer pt.close(15 * time.Second)
	if err := x.waitAssigned(ctx, e2ePassthroughLatencyGroup, len(hwm), pt); err != nil {
		return nil, fmt.Errorf("passthrough: %w", err)
	}
	lat, err = x.latency(ctx, raws, rate, latencyTarget{srv: pt, group: e2ePassthroughLatencyGroup,
		topic: e2ePassthroughTopic, eventID: copiedEventID})
	if err != nil {
		return nil, fmt.Errorf("passthrough latency: %w", err)
	}
	if len(lat.samples) > 0 {
		res.PassthroughP50MS = ms(percentile(lat.samples, 0.50))
		res.PassthroughP99MS = ms(percentile(lat.samples, 0.99))
	}
	if err := pt.close(15 * time.Second); err != nil {
		return nil, fmt.Errorf("stopping the passthrough: %w", err)
	}
	return res, nil
}

// waitAssigned waits for the consumer group to be stable with every
// partition assigned, and a moment more for its first fetches.
func (x *e2e) waitAssigned(ctx context.Context, group string, partitions int, srv *server) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if gi := x.cluster.GroupInfo(group); gi != nil && gi.State == "Stable" && gi.NumAssigned() == partitions {
			// The readers resolve the end of each partition when they
			// first fetch: events produced before that are skipped.
			return sleepCtx(ctx, 500*time.Millisecond)
		}
		select {
		case <-srv.p.Done():
			return fmt.Errorf("the process stopped: %v", srv.p.Err())
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("the group was not assigned within a minute")
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// messages turns event envelopes (docs/events.md) into Kafka messages keyed by record id
// (the call id for trackers), as a CRM's producer would.
func messages(raws [][]byte) []kafka.Message {
	out := make([]kafka.Message, len(raws))
	for i, raw := range raws {
		out[i] = kafka.Message{Key: []byte(eventKey(raw)), Value: raw}
	}
	return out
}

func eventKey(raw []byte) string {
	var ev struct {
		ID     string `json:"id"`
		Record struct {
			ID string `json:"id"`
		} `json:"record"`
		Tracker struct {
			CallID string `json:"call_id"`
		} `json:"tracker"`
	}
	_ = json.Unmarshal(raw, &ev) // generated: valid
	switch {
	case ev.Record.ID != "":
		return ev.Record.ID
	case ev.Tracker.CallID != "":
		return ev.Tracker.CallID
	}
	return ev.ID
}

func (x *e2e) writer(topic string, batchTimeout time.Duration) *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(x.brokers...), Topic: topic, Balancer: &kafka.Hash{},
		BatchTimeout: batchTimeout, BatchSize: 1000, RequiredAcks: kafka.RequireAll}
}

func (x *e2e) produce(ctx context.Context, msgs []kafka.Message) error {
	w := x.writer(ingest.DefaultTopic, 2*time.Millisecond)
	defer closeWriter(w)
	for i := 0; i < len(msgs); i += 1000 {
		if err := w.WriteMessages(ctx, msgs[i:min(i+1000, len(msgs))]...); err != nil {
			return err
		}
	}
	return nil
}

// closeWriter closes w, giving up after 5s: kafka-go's Close can hang,
// and a benchmark's writer has nothing left to flush.
func closeWriter(w *kafka.Writer) {
	done := make(chan struct{})
	go func() { _ = w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

func (x *e2e) highWatermarks(topic string) map[int32]int64 {
	out := map[int32]int64{}
	for _, pi := range x.cluster.PartitionInfos(topic) {
		out[pi.Partition] = pi.HighWatermark
	}
	return out
}

func (x *e2e) total(topic string) int64 {
	var n int64
	for _, pi := range x.cluster.PartitionInfos(topic) {
		n += pi.HighWatermark - pi.LogStartOffset
	}
	return n
}

// drain measures how long the consumer group takes to drain the input
// topic up to hwm: from the group being assigned every partition to the
// commit that covers hwm on every partition. The server's CPU profile
// named profile covers the same span.
func (x *e2e) drain(ctx context.Context, group string, hwm map[int32]int64, srv *server, profile string) (time.Duration, error) {
	var t0 time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for {
		gi := x.cluster.GroupInfo(group)
		if gi != nil && t0.IsZero() && gi.State == "Stable" && gi.NumAssigned() == len(hwm) {
			t0 = time.Now()
			if err := srv.send("profile " + profile); err != nil {
				return 0, err
			}
		}
		if !t0.IsZero() && gi != nil {
			var last time.Time
			covered := 0
			for p, end := range hwm {
				if c, ok := gi.Commits[ingest.DefaultTopic][p]; ok && c.Offset >= end {
					covered++
					if c.At.After(last) {
						last = c.At
					}
				}
			}
			if covered == len(hwm) {
				return last.Sub(t0), srv.send("stop")
			}
		}
		select {
		case <-srv.p.Done():
			return 0, fmt.Errorf("the process stopped: %v: %s", srv.p.Err(), strings.TrimSpace(lastLines(srv.errb.String(), 5)))
		default:
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the backlog was not drained within 10 minutes")
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

func ignoreCanceled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type latencyRun struct {
	rate    float64
	elapsed time.Duration // producing
	// measured is from the first event produced until every action was
	// read.
	measured time.Duration
	samples  []time.Duration // sorted
}

// latency produces raws at rate events/s and measures, for each event
// that fires an action, the time from its produce call to its first
// action record read from the actions topic.
// latencyTarget is what a latency measurement observes: the consumer
// group whose commits say it is done, and the output topic and the event
// id of its records.
type latencyTarget struct {
	srv     *server
	group   string
	topic   string
	eventID func(value []byte) string
}

func actionEventID(v []byte) string {
	var a struct {
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(v, &a)
	return a.EventID
}

func copiedEventID(v []byte) string {
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(v, &ev)
	return ev.ID
}

func (x *e2e) latency(ctx context.Context, raws [][]byte, rate float64, tg latencyTarget) (*latencyRun, error) {
	msgs := messages(raws)
	index := make(map[string]int, len(raws))
	for i, raw := range raws {
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		index[ev.ID] = i
	}
	sent := make([]time.Time, len(raws))
	arrived := make([]time.Time, len(raws))
	var mu sync.Mutex // guards arrived, and sent once the producer is done

	// Observers of the output topic, one reader per partition from its
	// current end.
	obsCtx, stopObs := context.WithCancel(ctx)
	defer stopObs()
	var wg sync.WaitGroup
	start := x.highWatermarks(tg.topic)
	read := make(map[int32]int64, len(start)) // next offset read, per partition
	var obsErr error
	for p, off := range start {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: x.brokers, Topic: tg.topic, Partition: int(p),
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(off); err != nil {
			r.Close()
			return nil, err
		}
		read[p] = off
		wg.Go(func() {
			defer r.Close()
			for {
				m, err := r.ReadMessage(obsCtx)
				if err != nil {
					if obsCtx.Err() == nil {
						mu.Lock()
						obsErr = err
						mu.Unlock()
					}
					return
				}
				now := time.Now()
				id := tg.eventID(m.Value)
				mu.Lock()
				if i, ok := index[id]; ok && arrived[i].IsZero() {
					arrived[i] = now
				}
				read[p] = m.Offset + 1
				mu.Unlock()
			}
		})
	}

	// The paced producer: every millisecond or so, what is due.
	w := x.writer(ingest.DefaultTopic, time.Millisecond)
	defer closeWriter(w)
	t0 := time.Now()
	for n := 0; n < len(msgs); {
		due := min(len(msgs), int(time.Since(t0).Seconds()*rate)+1)
		if due <= n {
			next := t0.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			if err := sleepCtx(ctx, time.Until(next)); err != nil {
				return nil, err
			}
			continue
		}
		now := time.Now()
		for i := n; i < due; i++ {
			msgs[i].Time = now
			sent[i] = now
		}
		if err := w.WriteMessages(ctx, msgs[n:due]...); err != nil {
			return nil, err
		}
		n = due
	}
	elapsed := time.Since(t0)

	// Wait for the service to commit every event (its outputs are then in
	// Kafka) and the observers to read every action up to there.
	hwm := x.highWatermarks(ingest.DefaultTopic)
	deadline := time.Now().Add(2 * time.Minute)
	for !x.committed(tg.group, hwm) {
		select {
		case <-tg.srv.p.Done():
			return nil, fmt.Errorf("the consumer stopped: %v", tg.srv.p.Err())
		default:
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the paced events were not consumed within 2 minutes")
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	end := x.highWatermarks(tg.topic)
	for {
		mu.Lock()
		caught, err := true, obsErr
		for p, off := range end {
			caught = caught && read[p] >= off
		}
		mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("reading actions: %w", err)
		}
		if caught {
			break
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the outputs were not read within 2 minutes")
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	stopObs()
	wg.Wait()

	run := &latencyRun{rate: float64(len(msgs)) / elapsed.Seconds(), elapsed: elapsed, measured: time.Since(t0)}
	for i := range arrived {
		if !arrived[i].IsZero() {
			run.samples = append(run.samples, arrived[i].Sub(sent[i]))
		}
	}
	slices.Sort(run.samples)
	return run, nil
}

func (x *e2e) committed(group string, hwm map[int32]int64) bool {
	gi := x.cluster.GroupInfo(group)
	if gi == nil {
		return false
	}
	for p, end := range hwm {
		if c, ok := gi.Commits[ingest.DefaultTopic][p]; !ok || c.Offset < end {
			return false
		}
	}
	return true
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// scrape reads the service's /metrics.
func scrape(ctx context.Context, addr string) (prometheus.Gatherer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return out, nil }), nil
}

// serviceStats compares two scrapes of the service's metrics, elapsed
// apart.
func serviceStats(a, b prometheus.Gatherer, elapsed time.Duration) ServiceStats {
	delta := func(name, label string) (sum, n float64) {
		s0, n0 := gathered(a, name, label)
		s1, n1 := gathered(b, name, label)
		return s1 - s0, n1 - n0
	}
	per := func(x, n float64) float64 {
		if n <= 0 {
			return 0
		}
		return x / n
	}
	var st ServiceStats
	cpu, _ := delta("process_cpu_seconds_total", "")
	st.CPUCores = cpu / elapsed.Seconds()
	_, st.GCCycles = delta("go_gc_duration_seconds", "")
	events, _ := delta("whenthen_decoded_events_total", "")
	batchSecs, batches := delta("whenthen_pipeline_batch_duration_seconds", "")
	engineSecs, engines := delta("whenthen_engine_batch_duration_seconds", "")
	produceSecs, produces := delta("whenthen_produce_duration_seconds", actions.DefaultActionsTopic)
	st.BatchEvents = per(events, batches)
	st.BatchMS = 1000 * per(batchSecs, batches)
	st.EngineMS = 1000 * per(engineSecs, engines)
	st.ProduceMS = 1000 * per(produceSecs, produces)
	p99 := func(name, label string) float64 {
		return 1000 * bucketQuantile(buckets(a, name, label), buckets(b, name, label), 0.99)
	}
	h0, h1 := buckets(a, "whenthen_event_latency_seconds", ""), buckets(b, "whenthen_event_latency_seconds", "")
	st.EventP50MS = 1000 * bucketQuantile(h0, h1, 0.50)
	st.EventP99MS = 1000 * bucketQuantile(h0, h1, 0.99)
	st.BatchP99MS = p99("whenthen_pipeline_batch_duration_seconds", "")
	st.EngineP99MS = p99("whenthen_engine_batch_duration_seconds", "")
	st.ProduceP99MS = p99("whenthen_produce_duration_seconds", actions.DefaultActionsTopic)
	for _, name := range []string{"whenthen_pipeline_retries_total", "whenthen_produce_retries_total", "whenthen_consumer_fetch_errors_total"} {
		n, _ := delta(name, "")
		st.Retries += n
	}
	return st
}

// buckets returns the cumulative counts of the histogram name (of its
// series with the label value, if one is given), by upper bound.
func buckets(g prometheus.Gatherer, name, label string) map[float64]uint64 {
	out := map[float64]uint64{}
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabelValue(m, label) {
				continue
			}
			for _, b := range m.GetHistogram().GetBucket() {
				out[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
	}
	return out
}

// bucketQuantile returns the upper bound of the bucket that holds the q
// quantile of the observations made between the two snapshots; +Inf if
// beyond the last bucket, 0 if there were none.
func bucketQuantile(before, after map[float64]uint64, q float64) float64 {
	bounds := make([]float64, 0, len(after))
	for ub := range after {
		bounds = append(bounds, ub)
	}
	slices.Sort(bounds)
	var total uint64
	if len(bounds) > 0 {
		total = after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	}
	if total == 0 {
		return 0
	}
	for _, ub := range bounds {
		if float64(after[ub]-before[ub]) >= q*float64(total) {
			return ub
		}
	}
	return math.Inf(1)
}

// gathered returns the sum of the counters named name in g (and 0), or
// the sum and count of the histograms named name; with a label value,
// only of the series that have it.
func gathered(g prometheus.Gatherer, name, label string) (sum, n float64) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabelValue(m, label) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				sum += m.GetHistogram().GetSampleSum()
				n += float64(m.GetHistogram().GetSampleCount())
			case m.GetSummary() != nil:
				sum += m.GetSummary().GetSampleSum()
				n += float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	return sum, n
}

// hasLabelValue reports whether one of m's labels has the value label;
// every series has the empty one.
func hasLabelValue(m *dto.Metric, label string) bool {
	if label == "" {
		return true
	}
	for _, lp := range m.GetLabel() {
		if lp.GetValue() == label {
			return true
		}
	}
	return false
}
