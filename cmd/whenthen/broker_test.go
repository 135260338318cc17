package main

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/whenthen/whenthen/internal/testenv"
)

// started is a command running in-process in the background.
type started struct {
	stdout, stderr *testenv.Buffer
	cancel         context.CancelFunc
	done           chan int // receives the exit code
}

// startCmd runs the binary's entry point in the background with a context
// the test cancels (and cancels at cleanup, waiting for the exit).
func startCmd(t *testing.T, getenv func(string) string, args ...string) *started {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	s := &started{stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	env := &cmdEnv{stdout: s.stdout, stderr: s.stderr, getenv: getenv}
	go func() { s.done <- run(ctx, env, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%v did not stop within 30s of its context being cancelled", args)
		}
	})
	return s
}

// waitFor polls the command's stdout until re matches it and returns the
// first submatch (or the whole match).
func (s *started) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			return m[len(m)-1]
		}
		select {
		case code := <-s.done:
			s.done <- code
			t.Fatalf("exited with %d before printing %v\nstdout:\n%s\nstderr:\n%s", code, re, s.stdout, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v within %v\nstdout:\n%s\nstderr:\n%s", re, timeout, s.stdout, s.stderr)
		}
	}
}

var listeningRE = regexp.MustCompile(`listening on (\S+)`)

func TestBroker(t *testing.T) {
	b := startCmd(t, nil, "broker", "--listen", "127.0.0.1:0", "--partitions", "2")
	addr := b.waitFor(t, listeningRE, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("topics", func(t *testing.T) {
		conn, err := kafka.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		parts, err := conn.ReadPartitions()
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, p := range parts {
			count[p.Topic]++
		}
		for _, topic := range []string{"crm.events", "automations.actions", "automations.runs", "automations.dlq", "automations.outcomes"} {
			if count[topic] != 2 {
				t.Errorf("topic %s has %d partitions, want 2 (all: %v)", topic, count[topic], count)
			}
		}
	})

	t.Run("produce and consume", func(t *testing.T) {
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "crm.events", Balancer: &kafka.Hash{},
			BatchTimeout: 10 * time.Millisecond, RequiredAcks: kafka.RequireAll}
		defer w.Close()
		var msgs []kafka.Message
		for i := range 6 {
			msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "rec-%d", i), Value: fmt.Appendf(nil, `{"n":%d}`, i)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: "broker-test",
			Topic: "crm.events", MaxWait: 100 * time.Millisecond})
		defer r.Close()
		var got []string
		for range msgs {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("FetchMessage: %v", err)
			}
			got = append(got, string(m.Key)+"="+string(m.Value))
		}
		slices.Sort(got)
		want := []string{`rec-0={"n":0}`, `rec-1={"n":1}`, `rec-2={"n":2}`, `rec-3={"n":3}`, `rec-4={"n":4}`, `rec-5={"n":5}`}
		if !slices.Equal(got, want) {
			t.Fatalf("consumed %v, want %v", got, want)
		}
	})

	t.Run("stops on cancel", func(t *testing.T) {
		b.cancel()
		select {
		case code := <-b.done:
			b.done <- code
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, b.stderr)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("broker did not stop within 10s of cancel")
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections after the broker stopped", addr)
		}
	})
}

func TestBrokerUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"broker", "--partitions", "0"}, 2, "--partitions must be at least 1"},
		{[]string{"broker", "--listen", "nonsense"}, 2, "--listen"},
		{[]string{"broker", "extra"}, 2, "usage: whenthen broker"},
	} {
		code, _, errs := runCmd(t, tt.args...)
		if code != tt.code || !regexp.MustCompile(regexp.QuoteMeta(tt.msg)).MatchString(errs) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errs, tt.code, tt.msg)
		}
	}
}
