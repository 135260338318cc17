package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The secrets of the tests' webhooks, as the environment holds them.
const (
	hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	smtpPass   = "smtp-pass-123"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// world is one test's deliverer and what it talks to.
type world struct {
	t      *testing.T
	kafka  *testenv.Cluster
	rdb    *redis.Client
	prefix string
	dir    string
	config string
	svc    *delivery.Service
	cancel context.CancelFunc
	done   chan error

	mu       sync.Mutex
	outcomes []actions.Outcome
	changed  chan struct{}
}

// newWorld writes config (with {{DIR}} replaced by a temporary directory
// holding the files the test wrote there) and starts a deliverer on it.
func newWorld(t *testing.T, config string, edit func(*delivery.Options)) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), changed: make(chan struct{}, 1)}
	w.kafka = testenv.Kafka(t, actions.DefaultActionsTopic, actions.DefaultOutcomesTopic, actions.DefaultDLQTopic)
	w.rdb, w.prefix = testenv.Redis(t)
	w.config = filepath.Join(w.dir, "deliver.yaml")
	w.writeConfig(config)
	o := delivery.Options{
		Kafka: daemon.KafkaOptions{Brokers: w.kafka.Addrs(), MaxWait: 100 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond, CommitInterval: 50 * time.Millisecond, LagInterval: -1, MetadataTTL: 200 * time.Millisecond},
		Redis:      daemon.RedisOptions{URL: testenv.RedisURL(t), Prefix: w.prefix},
		ConfigFile: w.config,
		Env: func(k string) string {
			return map[string]string{"HOOK_SECRET": hookSecret, "SMTP_PASSWORD": smtpPass}[k]
		},
		MetricsListen: "127.0.0.1:0",
		Logger:        testenv.Logger(t),
		PollInterval:  20 * time.Millisecond,
		StatsInterval: 100 * time.Millisecond,
		// Tests cut the drain short.
		ShutdownTimeout: 5 * time.Second,
		ReloadInterval:  -1,
		OnOutcome: func(o actions.Outcome) {
			w.mu.Lock()
			w.outcomes = append(w.outcomes, o)
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		},
	}
	if edit != nil {
		edit(&o)
	}
	svc, err := delivery.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- svc.Run(ctx) }()
	t.Cleanup(w.stop)
	testenv.WaitFor(t, 15*time.Second, "the deliverer ready", func() bool { return svc.Ready(context.Background()) == nil })
	return w
}

func (w *world) writeConfig(config string) {
	w.t.Helper()
	if err := os.WriteFile(w.config, []byte(strings.ReplaceAll(config, "{{DIR}}", w.dir)), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		w.t.Error("Run did not return within 15s of its context ending")
	}
	w.cancel = nil
	_ = w.svc.Close()
}

// produce writes actions to the actions topic, as the engine does.
func (w *world) produce(acts ...actions.Action) {
	w.t.Helper()
	msgs := make([]kafka.Message, len(acts))
	for i := range acts {
		msgs[i] = kafka.Message{Key: []byte(acts[i].Key()), Value: acts[i].AppendJSON(nil)}
	}
	w.kafka.Produce(w.t, actions.DefaultActionsTopic, msgs...)
}

// waitOutcomes waits until n outcomes were written (OnOutcome) and
// returns them by action id and destination.
func (w *world) waitOutcomes(n int, timeout time.Duration) map[string]actions.Outcome {
	w.t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		got := len(w.outcomes)
		w.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-w.changed:
		case <-deadline:
			w.t.Fatalf("%d outcomes after %v, want %d: %+v", got, timeout, n, w.all())
		}
	}
	out := map[string]actions.Outcome{}
	for _, o := range w.all() {
		out[o.ActionID+"/"+o.Destination] = o
	}
	return out
}

func (w *world) all() []actions.Outcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]actions.Outcome(nil), w.outcomes...)
}

// topicOutcomes reads the outcomes topic.
func (w *world) topicOutcomes() []actions.Outcome {
	var out []actions.Outcome
	for _, m := range w.kafka.ReadTopic(w.t, actions.DefaultOutcomesTopic) {
		var o actions.Outcome
		if err := json.Unmarshal(m.Value, &o); err != nil {
			w.t.Fatalf("outcome %s: %v", m.Value, err)
		}
		if string(m.Key) != o.ActionID {
			w.t.Errorf("outcome keyed %q, want its action id %s", m.Key, o.ActionID)
		}
		out = append(out, o)
	}
	return out
}

// save stores a record snapshot as the engine would, set by an event at t0.
func (w *world) save(ws, object string, fields map[string]any) {
	w.t.Helper()
	w.saveAt(ws, object, fields, t0)
}

// saveAt stores a record snapshot set by an event at time at.
func (w *world) saveAt(ws, object string, fields map[string]any, at time.Time) {
	w.t.Helper()
	st, err := store.NewRedis(w.rdb, w.prefix, store.Options{Schema: crm.DefaultSchema()})
	if err != nil {
		w.t.Fatal(err)
	}
	o, _ := crm.DefaultSchema().Object(object)
	rec, err := o.NewRecord(fields, crm.Limits{})
	if err != nil {
		w.t.Fatal(err)
	}
	err = st.Apply(context.Background(), &store.Writes{Saves: []store.Save{{
		Ref: store.RecordRef{Workspace: ws, Object: object, ID: fields["id"].(string)}, Snapshot: store.Snapshot{Record: rec, Time: at}}}}, at)
	if err != nil {
		w.t.Fatal(err)
	}
}

func flowAction(ws, automation, event, flow, person, object, record string) actions.Action {
	return actions.Action{ActionID: actions.ActionID(ws, automation, event, person), Workspace: ws, AutomationID: automation,
		Type: actions.TypeFlow, Flow: &actions.Flow{ID: flow, PersonID: person}, Object: object, RecordID: record,
		EventID: event, EventTime: t0, FiredAt: t0.Add(12 * time.Millisecond), RunID: actions.RunID(ws, automation, event)}
}

func briefAction(ws, automation, event, object, record string, recipients ...string) actions.Action {
	return actions.Action{ActionID: actions.ActionID(ws, automation, event, actions.TypeBrief), Workspace: ws, AutomationID: automation,
		Type: actions.TypeBrief, Brief: &actions.Brief{Kind: object, Recipients: recipients}, Object: object, RecordID: record,
		EventID: event, EventTime: t0, FiredAt: t0.Add(12 * time.Millisecond), RunID: actions.RunID(ws, automation, event)}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
