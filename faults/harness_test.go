//go:build linux

package faults

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/childproc"
	"github.com/whenthen/whenthen/internal/testenv"
)

const (
	inputTopic = ingest.DefaultTopic
	group      = "whenthen-faults"
	workspace  = "acme"
	prefix     = "wt:"
)

// faultRules: per opportunity record, the workload's four events give
// four actions (see workload).
const faultRules = `
workspace: acme
automations:
  - id: big-deal
    when: {record: opportunity}
    if: record.amount > 1000
    fire: every_time
    then:
      brief: {kind: opportunity, recipients: [owner]}
  - id: won-flow
    when: {record: opportunity, on: [updated]}
    if: record.stage == "Closed Won"
    then:
      flow: {id: won, who: record.primary_contact_id}
`

// bin is the whenthen binary, built once per test binary.
var bin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// whenthenBinary builds cmd/whenthen (without -race: the child is the
// system under test, the race detector runs in the test process).
func whenthenBinary(t testing.TB) string {
	t.Helper()
	bin.once.Do(func() {
		bin.dir, bin.err = os.MkdirTemp("", "whenthen-faults-")
		if bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "whenthen")
		cmd := exec.Command("go", "build", "-o", bin.path, "github.com/whenthen/whenthen/cmd/whenthen")
		if out, err := cmd.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// world is one case's setup: a kfake cluster behind a proxy, a
// redis-server behind a proxy, the rules, and the ledger of what the
// broker saw.
type world struct {
	t      *testing.T
	kafka  *testenv.Cluster
	kproxy *Proxy // every Kafka connection goes through it (the broker advertises it)
	redis  *testenv.RedisServer
	rproxy *Proxy
	rdb    *redis.Client // straight to redis-server, for the test's own looks
	rules  string
	ledger *ledger
	// sessionTimeout is what JoinGroup requests are rewritten to, so that
	// a killed child's membership expires quickly (whenthen run has no
	// setting for it; kafka-go's default is 30s).
	sessionTimeout time.Duration

	mu        sync.Mutex
	instances []*instance
}

type worldOptions struct {
	partitions int
	redisArgs  []string
	// brokerConfigs are kfake broker configs (message.max.bytes, ...).
	brokerConfigs map[string]string
	// controls are installed on the cluster before the ledger's: a
	// control that answers a request (a swallowed produce) hides it from
	// the ledger, which must not count what was never applied.
	controls func(*testenv.Cluster)
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	if o.partitions == 0 {
		o.partitions = 4
	}
	w := &world{t: t, ledger: newLedger(), sessionTimeout: 6 * time.Second}
	var listenErr error
	listen := func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		p, err := NewProxy("127.0.0.1:0", ln.Addr().String())
		if err != nil {
			ln.Close()
			listenErr = err
			return nil, err
		}
		w.kproxy = p
		pa, _ := net.ResolveTCPAddr("tcp", p.Addr())
		return &advertised{Listener: ln, addr: pa}, nil
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(1),
		kfake.SeedTopics(1, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.ListenFn(listen),
	}
	if o.brokerConfigs != nil {
		opts = append(opts, kfake.BrokerConfigs(o.brokerConfigs))
	}
	kc, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v %v", err, listenErr)
	}
	t.Cleanup(func() {
		kc.Close()
		w.kproxy.Close()
	})
	w.kafka = &testenv.Cluster{Cluster: kc}
	if err := kc.CreateTopic(inputTopic, int32(o.partitions), nil); err != nil {
		t.Fatal(err)
	}
	if o.controls != nil {
		o.controls(w.kafka)
	}
	w.ledger.install(w.kafka, w.sessionTimeout)

	w.redis = testenv.StartRedis(t, o.redisArgs...)
	if w.rproxy, err = NewProxy("127.0.0.1:0", w.redis.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.rproxy.Close)
	w.rdb = redis.NewClient(&redis.Options{Addr: w.redis.Addr(), MaxRetries: -1})
	t.Cleanup(func() { w.rdb.Close() })

	w.rules = filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(w.rules, []byte(faultRules), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// advertised is the broker's real listener reporting the proxy's address,
// which kfake then advertises in its metadata: clients connect through
// the proxy only.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a *advertised) Addr() net.Addr { return a.addr }

// brokers is the bootstrap address: the proxy.
func (w *world) brokers() string { return w.kproxy.Addr() }

// redisURL is the URL the service uses: through the proxy.
func (w *world) redisURL() string { return "redis://" + w.rproxy.Addr() + "/0" }

// ledger follows, on the broker's own goroutine, the records produced to
// each output topic and each offset commit of the group, in the order the
// broker received them: a commit covers an input message only if that
// message's outputs were produced before it.
type ledger struct {
	mu       sync.Mutex
	produced map[string]int64 // records received per topic
	commits  []commitObs
}

type commitObs struct {
	partition int32
	offset    int64
	actions   int64 // action records received before this commit
	dlq       int64 // dead letters received before it
	at        time.Time
}

func newLedger() *ledger { return &ledger{produced: map[string]int64{}} }

// install adds the ledger's observing controls, and the JoinGroup rewrite.
// Controls that answer a request (a test's swallowed produce) must be
// added before install: the ledger then never sees what was not applied.
func (l *ledger) install(c *testenv.Cluster, session time.Duration) {
	c.ControlKey(int16(kmsg.JoinGroup), func(r kmsg.Request) (kmsg.Response, error, bool) {
		jr := r.(*kmsg.JoinGroupRequest)
		if s := int32(session.Milliseconds()); jr.SessionTimeoutMillis > s {
			jr.SessionTimeoutMillis = s
		}
		if rb := int32(2 * session.Milliseconds()); jr.RebalanceTimeoutMillis > rb {
			jr.RebalanceTimeoutMillis = rb
		}
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		pr := r.(*kmsg.ProduceRequest)
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, tp := range pr.Topics {
			for _, p := range tp.Partitions {
				l.produced[tp.Topic] += countRecords(p.Records)
			}
		}
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.OffsetCommit), func(r kmsg.Request) (kmsg.Response, error, bool) {
		cr := r.(*kmsg.OffsetCommitRequest)
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, tp := range cr.Topics {
			if tp.Topic != inputTopic {
				continue
			}
			for _, p := range tp.Partitions {
				l.commits = append(l.commits, commitObs{partition: p.Partition, offset: p.Offset,
					actions: l.produced[actions.DefaultActionsTopic], dlq: l.produced[actions.DefaultDLQTopic], at: time.Now()})
			}
		}
		return nil, nil, false
	})
}

// countRecords counts the records of the record batches in raw (v2
// batches: the count is at byte 57 of each batch header).
func countRecords(raw []byte) int64 {
	var n int64
	for len(raw) >= 61 {
		length := int(binary.BigEndian.Uint32(raw[8:12]))
		n += int64(int32(binary.BigEndian.Uint32(raw[57:61])))
		if 12+length > len(raw) || length <= 0 {
			break
		}
		raw = raw[12+length:]
	}
	return n
}

func (l *ledger) snapshot() (map[string]int64, []commitObs) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := map[string]int64{}
	for k, v := range l.produced {
		p[k] = v
	}
	return p, slices.Clone(l.commits)
}

// workload is the input: per record r, four events, keyed by record id:
//
//	e<r>-0 record.created amount 500, Prospecting          → nothing
//	e<r>-1 record.updated amount 5000, Negotiation         → big-deal
//	e<r>-2 record.updated Closed Won, with before          → big-deal, won-flow
//	e<r>-3 record.updated partial {amount: 7000}           → big-deal
//
// The on_enter of e<r>-2 reads its before, not the stored state; e<r>-3
// merges into the stored state, and fires whether it is there or not:
// every expected action is deterministic, even across a Redis that lost
// its data. pad adds a name of that many bytes; marker goes into every
// string field, so that logs can be searched for it.
type workload struct {
	records int
	pad     int
	marker  string
	// rate is events per second (0: as fast as possible).
	rate int
}

const eventsPerRecord = 4

func (wl workload) total() int { return wl.records * eventsPerRecord }

func eventID(r, s int) string { return fmt.Sprintf("e%d-%d", r, s) }

func (wl workload) message(r, s int) kafka.Message {
	rec := fmt.Sprintf("opp-%d", r)
	t := time.Date(2026, 11, 24, 10, 0, s, 0, time.UTC).Format(time.RFC3339)
	name := wl.marker + "-name-" + strconv.Itoa(r)
	if wl.pad > len(name) {
		name += strings.Repeat("x", wl.pad-len(name))
	}
	owner := wl.marker + "-owner"
	contact := fmt.Sprintf("c-%d", r)
	var body string
	head := fmt.Sprintf(`{"id":%q,"time":%q,"workspace":%q,"object":"opportunity",`, eventID(r, s), t, workspace)
	switch s {
	case 0:
		body = fmt.Sprintf(`"type":"record.created","record":{"id":%q,"name":%q,"stage":"Prospecting","amount":500,"owner_id":%q,"primary_contact_id":%q}}`, rec, name, owner, contact)
	case 1:
		body = fmt.Sprintf(`"type":"record.updated","record":{"id":%q,"name":%q,"stage":"Negotiation","amount":5000,"owner_id":%q,"primary_contact_id":%q},"before":{"stage":"Prospecting","amount":500}}`, rec, name, owner, contact)
	case 2:
		body = fmt.Sprintf(`"type":"record.updated","record":{"id":%q,"name":%q,"stage":"Closed Won","amount":5000,"owner_id":%q,"primary_contact_id":%q},"before":{"stage":"Negotiation"}}`, rec, name, owner, contact)
	case 3:
		body = fmt.Sprintf(`"type":"record.updated","partial":true,"record":{"id":%q,"amount":7000}}`, rec)
	}
	return kafka.Message{Key: []byte(rec), Value: []byte(head + body)}
}

// expected returns the action ids an event of the workload must produce.
func expected(evID string) []string {
	var r, s int
	if _, err := fmt.Sscanf(evID, "e%d-%d", &r, &s); err != nil {
		return nil
	}
	var out []string
	if s >= 1 {
		out = append(out, actions.ActionID(workspace, "big-deal", evID, "brief"))
	}
	if s == 2 {
		out = append(out, actions.ActionID(workspace, "won-flow", evID, fmt.Sprintf("c-%d", r)))
	}
	return out
}

// messages returns the workload's messages in production order: blocks of
// 50 records, each block step by step, so that a record's events are
// spread out and in order.
func (wl workload) messages() []kafka.Message {
	out := make([]kafka.Message, 0, wl.total())
	for b := 0; b < wl.records; b += 50 {
		for s := range eventsPerRecord {
			for r := b; r < min(b+50, wl.records); r++ {
				out = append(out, wl.message(r, s))
			}
		}
	}
	return out
}

// producer writes messages to the input topic in the background, at the
// workload's rate, retrying a chunk until it is written (a retry may write
// messages twice: harmless, same event ids).
type producer struct {
	done    chan struct{}
	mu      sync.Mutex
	written int
	retries int
}

func (w *world) produce(ctx context.Context, msgs []kafka.Message, rate int) *producer {
	p := &producer{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		kw := &kafka.Writer{Addr: kafka.TCP(w.brokers()), Topic: inputTopic, Balancer: &kafka.Hash{},
			BatchTimeout: 2 * time.Millisecond, BatchSize: 200, BatchBytes: 16 << 20, RequiredAcks: kafka.RequireAll,
			MaxAttempts: 3, WriteTimeout: 5 * time.Second, Transport: &kafka.Transport{MetadataTTL: time.Second}}
		defer kw.Close()
		const chunk = 200
		start := time.Now()
		for i := 0; i < len(msgs); i += chunk {
			batch := msgs[i:min(i+chunk, len(msgs))]
			for {
				if ctx.Err() != nil {
					return
				}
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := kw.WriteMessages(wctx, batch...)
				cancel()
				if err == nil {
					break
				}
				p.mu.Lock()
				p.retries++
				p.mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
			p.mu.Lock()
			p.written += len(batch)
			p.mu.Unlock()
			if rate > 0 {
				due := start.Add(time.Duration(float64(i+len(batch)) / float64(rate) * float64(time.Second)))
				time.Sleep(time.Until(due))
			}
		}
	}()
	return p
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.written
}

func (p *producer) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("producing the input did not finish within %v", timeout)
	}
}

// allCommitted reports whether the group committed every input partition
// to its end.
func (w *world) allCommitted() bool {
	gi := w.kafka.GroupInfo(group)
	if gi == nil {
		return false
	}
	for _, pi := range w.kafka.PartitionInfos(inputTopic) {
		if gi.Commits[inputTopic][pi.Partition].Offset != pi.HighWatermark {
			return false
		}
	}
	return true
}

// verdict is what a case's outputs say.
type verdict struct {
	inputs     int
	expected   int            // distinct action ids the inputs must produce
	actions    int            // action records in the topic
	distinct   int            // distinct action ids
	lost       []string       // expected action ids not in the topic
	dups       map[string]int // action id → copies, for those with more than one
	dupsBy     map[string]int // automation → action ids duplicated
	runErrors  int            // run records with outcome error
	dlq        []kafka.Message
	violations []string // commits covering messages whose outputs were not produced before them
	backwards  int      // commits lower than the previous accepted commit of their partition
	actionAt   map[string]int64
	firstEvent map[string]string // action id → event id
}

// verify reads the topics and checks the outputs against the workload's
// expectations (events of ids the workload does not know, e.g. poison,
// expect nothing) and every offset commit the broker received against the
// outputs produced before it.
func (w *world) verify(t *testing.T) *verdict {
	t.Helper()
	v := &verdict{dups: map[string]int{}, dupsBy: map[string]int{}, actionAt: map[string]int64{}, firstEvent: map[string]string{}}
	inputs := w.kafka.ReadTopic(t, inputTopic)
	v.inputs = len(inputs)
	acts := w.kafka.ReadTopic(t, actions.DefaultActionsTopic)
	v.actions = len(acts)
	seen := map[string]int{}
	first := map[string]int64{} // action id → offset of its first copy
	auto := map[string]string{}
	for _, m := range acts {
		var a struct {
			ActionID     string `json:"action_id"`
			AutomationID string `json:"automation_id"`
			EventID      string `json:"event_id"`
		}
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatalf("action record %q: %v", m.Value, err)
		}
		seen[a.ActionID]++
		if _, ok := first[a.ActionID]; !ok {
			first[a.ActionID] = m.Offset
		}
		auto[a.ActionID] = a.AutomationID
		v.firstEvent[a.ActionID] = a.EventID
	}
	v.actionAt = first
	v.distinct = len(seen)
	for id, n := range seen {
		if n > 1 {
			v.dups[id] = n
			v.dupsBy[auto[id]]++
		}
	}
	type inMsg struct {
		offset int64
		event  string
	}
	byPart := map[int][]inMsg{}
	want := map[string]bool{}
	for _, m := range inputs {
		var e struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(m.Value, &e) // poison has none
		byPart[m.Partition] = append(byPart[m.Partition], inMsg{m.Offset, e.ID})
		for _, id := range expected(e.ID) {
			want[id] = true
		}
	}
	v.expected = len(want)
	for id := range want {
		if seen[id] == 0 {
			v.lost = append(v.lost, id)
		}
	}
	sort.Strings(v.lost)
	for _, m := range w.kafka.ReadTopic(t, actions.DefaultRunsTopic) {
		var r struct {
			Outcome string `json:"outcome"`
		}
		if json.Unmarshal(m.Value, &r) == nil && r.Outcome == "error" {
			v.runErrors++
		}
	}
	v.dlq = w.kafka.ReadTopic(t, actions.DefaultDLQTopic)
	dlqAt := map[string]int64{} // "partition/offset" of the source → dlq offset
	for _, m := range v.dlq {
		var p, o string
		for _, h := range m.Headers {
			switch h.Key {
			case actions.HeaderSourcePartition:
				p = string(h.Value)
			case actions.HeaderSourceOffset:
				o = string(h.Value)
			}
		}
		if _, ok := dlqAt[p+"/"+o]; !ok {
			dlqAt[p+"/"+o] = m.Offset
		}
	}

	// Each commit against the outputs received before it.
	_, commits := w.ledger.snapshot()
	last := map[int32]int64{}
	for _, c := range commits {
		if prev, ok := last[c.partition]; ok && c.offset < prev {
			v.backwards++
		}
		last[c.partition] = c.offset
		for _, in := range byPart[int(c.partition)] {
			if in.offset >= c.offset {
				break
			}
			exp := expected(in.event)
			if in.event == "" || (len(exp) == 0 && !strings.HasPrefix(in.event, "e")) {
				// Not a workload event: if it was dead-lettered, that must
				// precede the commit.
				if at, ok := dlqAt[fmt.Sprintf("%d/%d", c.partition, in.offset)]; ok && at >= c.dlq {
					v.violations = append(v.violations, fmt.Sprintf("commit %d/%d at %s before the dead letter of offset %d",
						c.partition, c.offset, c.at.Format("15:04:05.000"), in.offset))
				}
				continue
			}
			for _, id := range exp {
				if at, ok := first[id]; !ok || at >= c.actions {
					v.violations = append(v.violations, fmt.Sprintf("commit %d/%d at %s covers %s (offset %d) before its action %s was produced",
						c.partition, c.offset, c.at.Format("15:04:05.000"), in.event, in.offset, id))
				}
			}
		}
	}
	return v
}

// check fails the test on lost actions, run errors and commit violations.
func (v *verdict) check(t *testing.T) {
	t.Helper()
	if len(v.lost) > 0 {
		t.Errorf("%d expected actions lost, e.g. %v", len(v.lost), v.lost[:min(5, len(v.lost))])
	}
	if v.runErrors > 0 {
		t.Errorf("%d runs with outcome error", v.runErrors)
	}
	if len(v.violations) > 0 {
		t.Errorf("%d offset commits covered messages whose outputs were not yet produced, e.g.:\n%s",
			len(v.violations), strings.Join(v.violations[:min(5, len(v.violations))], "\n"))
	}
}

func (v *verdict) dupCount() int { return len(v.dups) }

func (v *verdict) dupSummary() string {
	if len(v.dupsBy) == 0 {
		return "none"
	}
	var parts []string
	for a, n := range v.dupsBy {
		parts = append(parts, fmt.Sprintf("%s:%d", a, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// instance is one `whenthen run` child process.
type instance struct {
	t       *testing.T
	name    string
	p       *childproc.Process
	metrics string
	out     *testenv.Buffer
}

// instanceOpts are the settings of one `whenthen run` child.
type instanceOpts struct {
	batchSize int
	logLevel  string
	extra     []string
	redisURL  string // default: through the proxy
}

// start starts `whenthen run` against the world and waits until /readyz
// answers 200.
func (w *world) start(name string, o instanceOpts) *instance {
	t := w.t
	t.Helper()
	path := whenthenBinary(t)
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if o.batchSize == 0 {
		o.batchSize = 100
	}
	if o.logLevel == "" {
		o.logLevel = "info"
	}
	if o.redisURL == "" {
		o.redisURL = w.redisURL()
	}
	args := append([]string{"run",
		"--kafka-brokers", w.brokers(),
		"--group", group,
		"--redis-url", o.redisURL,
		"--redis-prefix", prefix,
		"--rules", w.rules,
		"--metrics-listen", "127.0.0.1:" + strconv.Itoa(port),
		"--log-format", "json",
		"--log-level", o.logLevel,
		"--reload-interval", "-1s",
		"--shutdown-timeout", "10s",
		"--batch-size", strconv.Itoa(o.batchSize),
	}, o.extra...)
	in := &instance{t: t, name: name, metrics: "127.0.0.1:" + strconv.Itoa(port), out: &testenv.Buffer{}}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = in.out, in.out
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	if in.p, err = childproc.Start(cmd); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	w.mu.Lock()
	w.instances = append(w.instances, in)
	w.mu.Unlock()
	t.Cleanup(func() {
		in.kill()
		if d := os.Getenv("WHENTHEN_FAULTS_DUMP"); d != "" {
			_ = os.WriteFile(filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log"), []byte(in.out.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("%s output (last 40 lines):\n%s", name, tail(in.out.String(), 40))
		}
	})
	testenv.WaitFor(t, 30*time.Second, name+" ready", func() bool {
		select {
		case <-in.p.Done():
			t.Fatalf("%s exited during startup:\n%s", name, tail(in.out.String(), 40))
		default:
		}
		code, _ := in.readyz()
		return code == 200
	})
	return in
}

func (in *instance) pid() int { return in.p.Pid() }

// kill ends the child with SIGKILL and waits for it.
func (in *instance) kill() { in.p.Kill() }

// term asks the child to drain (SIGTERM) and waits up to timeout; it
// reports whether the child exited by itself with code 0.
func (in *instance) term(timeout time.Duration) bool {
	in.p.Stop(timeout)
	return in.p.Err() == nil
}

// readyz returns /readyz's status and body (0 if it does not answer).
func (in *instance) readyz() (int, string) {
	return httpGet("http://" + in.metrics + "/readyz")
}

// metric returns the value of an unlabelled sample of /metrics, or of
// the first line starting with name (labels included), -1 if absent.
func (in *instance) metric(name string) float64 {
	code, body := httpGet("http://" + in.metrics + "/metrics")
	if code != 200 {
		return -1
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			f, _ := strconv.ParseFloat(strings.TrimSpace(line[len(name)+1:]), 64)
			return f
		}
	}
	return -1
}

// rss returns the child's resident set size in bytes (0 once it exited).
func (in *instance) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", in.pid()))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

var httpClient = &http.Client{Timeout: 3 * time.Second}

func httpGet(url string) (int, string) {
	res, err := httpClient.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sampler samples a value every interval in the background.
type sampler struct {
	mu     sync.Mutex
	stop   chan struct{}
	done   chan struct{}
	events []sample
}

type sample struct {
	at time.Time
	v  int64
}

func sampleEvery(d time.Duration, f func() int64) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			v := f()
			s.mu.Lock()
			s.events = append(s.events, sample{time.Now(), v})
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) finish() []sample {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

// maxIn returns the largest sample in [from, to).
func maxIn(ss []sample, from, to time.Time) int64 {
	var m int64
	for _, s := range ss {
		if !s.at.Before(from) && s.at.Before(to) && s.v > m {
			m = s.v
		}
	}
	return m
}

// firstAfter returns the time of the first sample at or after from whose
// value satisfies ok, and whether there is one.
func firstAfter(ss []sample, from time.Time, ok func(int64) bool) (time.Time, bool) {
	for _, s := range ss {
		if !s.at.Before(from) && ok(s.v) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

// expireLeases makes every pending claim of the workspace look as if its
// lease ran out, as 30 s after a crash it would: `whenthen run` has no
// setting for the lease, and the test does not wait it out. Only while no
// instance runs. It returns the action ids that were pending.
func (w *world) expireLeases(ctx context.Context) []string {
	t := w.t
	t.Helper()
	var keys []string
	iter := w.rdb.Scan(ctx, 0, prefix+"{"+workspace+"}:a:*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan claims: %v", err)
	}
	var pending []string
	for i := 0; i < len(keys); i += 500 {
		ks := keys[i:min(i+500, len(keys))]
		res, err := expireScript.Run(ctx, w.rdb, ks).StringSlice()
		if err != nil {
			t.Fatalf("expire leases: %v", err)
		}
		for _, k := range res {
			pending = append(pending, k[strings.LastIndex(k, ":")+1:])
		}
	}
	return pending
}

var expireScript = redis.NewScript(`
local out = {}
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v and string.sub(v, 1, 2) == 'p|' then
    local rest = string.sub(v, 3)
    local sep = string.find(rest, '|', 1, true)
    redis.call('SET', k, 'p|' .. string.sub(rest, 1, sep - 1) .. '|0', 'KEEPTTL')
    table.insert(out, k)
  end
end
return out
`)

// logsContaining returns how many output lines of all the world's
// instances contain s.
func (w *world) logsContaining(s string) (lines int, example string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, in := range w.instances {
		for line := range strings.Lines(in.out.String()) {
			if strings.Contains(line, s) {
				if lines == 0 {
					example = line
				}
				lines++
			}
		}
	}
	return lines, example
}

// kafkaCommitted returns the group's committed offsets summed over the
// input partitions.
func (w *world) kafkaCommitted() int64 {
	gi := w.kafka.GroupInfo(group)
	if gi == nil {
		return 0
	}
	var n int64
	for _, c := range gi.Commits[inputTopic] {
		n += c.Offset
	}
	return n
}
