package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKafkaOptionsValidate(t *testing.T) {
	good := KafkaOptions{Brokers: []string{"k1:9092", "k2:9092"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	noLag := good
	noLag.LagInterval = -1 // the lag gauge off
	if err := noLag.Validate(); err != nil {
		t.Fatalf("a negative lag interval: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*KafkaOptions)
		want string
	}{
		{"no brokers", func(o *KafkaOptions) { o.Brokers = nil }, "no Kafka brokers"},
		{"broker without port", func(o *KafkaOptions) { o.Brokers = []string{"k1"} }, `Kafka broker "k1": want host:port`},
		{"broker URL", func(o *KafkaOptions) { o.Brokers = []string{"kafka://k1:9092"} }, "want host:port"},
		{"certificate without key", func(o *KafkaOptions) { o.TLS.CertFile = "c.pem" }, "both the client certificate and key"},
		{"password without mechanism", func(o *KafkaOptions) { o.SASL.Password = "p" }, "without a mechanism"},
		{"mechanism without user", func(o *KafkaOptions) { o.SASL.Mechanism = "scram-sha-256" }, "SCRAM-SHA-256: no username"},
		{"unknown mechanism", func(o *KafkaOptions) { o.SASL.Mechanism = "GSSAPI"; o.SASL.Username = "u" }, `mechanism "GSSAPI"`},
		{"negative session timeout", func(o *KafkaOptions) { o.SessionTimeout = -time.Second }, "negative Kafka session timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := good
			c.edit(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error with %q", err, c.want)
			}
		})
	}
	// Every problem is reported at once.
	bad := KafkaOptions{TLS: TLSOptions{KeyFile: "k.pem"}, SASL: SASLOptions{Mechanism: "X"}}
	if n := strings.Count(bad.Validate().Error(), "\n") + 1; n != 3 {
		t.Fatalf("3 problems gave %d errors: %v", n, bad.Validate())
	}
}

func TestKafkaClients(t *testing.T) {
	d, tr, err := KafkaClients(KafkaOptions{Brokers: []string{"k:9092"}, MetadataTTL: time.Minute,
		SASL: SASLOptions{Mechanism: "scram-sha-512", Username: "u", Password: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.SASLMechanism == nil || d.SASLMechanism.Name() != SASLScramSHA512 || tr.SASL != d.SASLMechanism {
		t.Fatalf("SASL not on both clients: dialer %v, transport %v", d.SASLMechanism, tr.SASL)
	}
	if d.TLS != nil || tr.TLS != nil || tr.MetadataTTL != time.Minute || d.ClientID != clientID {
		t.Fatalf("dialer %+v, transport %+v", d, tr)
	}

	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		o    KafkaOptions
		want string
	}{
		"missing CA file": {KafkaOptions{TLS: TLSOptions{CAFile: filepath.Join(dir, "none.pem")}}, "kafka TLS: CA file"},
		"CA file not PEM": {KafkaOptions{TLS: TLSOptions{CAFile: notPEM}}, "no PEM certificate"},
		"bad key pair":    {KafkaOptions{TLS: TLSOptions{CertFile: notPEM, KeyFile: notPEM}}, "client certificate"},
		"bad mechanism":   {KafkaOptions{SASL: SASLOptions{Mechanism: "OAUTHBEARER"}}, "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
	} {
		if _, _, err := KafkaClients(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
	d, _, err = KafkaClients(KafkaOptions{TLS: TLSOptions{Enabled: true, ServerName: "kafka.internal"}})
	if err != nil || d.TLS == nil || d.TLS.ServerName != "kafka.internal" || d.TLS.MinVersion == 0 {
		t.Fatalf("TLS on: %+v, %v", d, err)
	}
}

func TestRedisOptions(t *testing.T) {
	for _, c := range []struct {
		o    RedisOptions
		want string // "" for valid
	}{
		{RedisOptions{}, ""},
		{RedisOptions{URL: "redis://h:6379/0"}, ""},
		{RedisOptions{URL: "redis+cluster://h1:7000,h2:7001", CAFile: ""}, ""},
		{RedisOptions{URL: "rediss://h:6379/0", CAFile: "ca.pem"}, ""},
		{RedisOptions{URL: "http://h:6379"}, "redis URL"},
		{RedisOptions{URL: "redis://h:6379/0", CAFile: "ca.pem"}, "not rediss://"},
		{RedisOptions{URL: "redis://:s3cret@h:6379/x"}, "redis URL"},
	} {
		err := c.o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.o, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error with %q", c.o, err, c.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("the error quotes the password: %v", err)
		}
	}
	if _, err := RedisClient(RedisOptions{URL: "redis://h:6379/0", CAFile: "ca.pem"}, slog.Default()); err == nil {
		t.Error("RedisClient took a CA file for a plain URL")
	}
	c, err := RedisClient(RedisOptions{URL: "redis://127.0.0.1:1/0"}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestLogger(t *testing.T) {
	for _, c := range []struct{ format, level, want string }{
		{"", "", ""}, {"json", "debug", ""}, {"text", "WARN", ""}, {"text", "warning", ""},
		{"yaml", "info", `log format "yaml"`}, {"json", "verbose", `log level "verbose"`},
	} {
		err := ValidateLog(c.format, c.level)
		_, nerr := NewLogger(&bytes.Buffer{}, c.format, c.level)
		if (err == nil) != (c.want == "") || (nerr == nil) != (c.want == "") ||
			(err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q %q: ValidateLog %v, NewLogger %v, want %q", c.format, c.level, err, nerr, c.want)
		}
	}
	var b bytes.Buffer
	log, err := NewLogger(&b, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("dropped")
	log.Warn("kept", "n", 1)
	if s := b.String(); strings.Contains(s, "dropped") || !strings.Contains(s, `"msg":"kept"`) {
		t.Fatalf("log: %s", s)
	}
}

func TestLifecycle(t *testing.T) {
	errClosed := errors.New("closed")

	t.Run("close before run releases", func(t *testing.T) {
		l := &Lifecycle{Name: "svc", ErrClosed: errClosed}
		released := 0
		if err := l.Close(time.Second, func(ctx context.Context) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("release without a deadline")
			}
			released++
		}); err != nil {
			t.Fatal(err)
		}
		_ = l.Close(time.Second, func(context.Context) { released++ })
		if released != 1 {
			t.Fatalf("released %d times", released)
		}
		if _, _, err := l.Start(context.Background()); !errors.Is(err, errClosed) {
			t.Fatalf("Start after Close: %v", err)
		}
	})

	t.Run("close cancels run and waits", func(t *testing.T) {
		l := &Lifecycle{Name: "svc", ErrClosed: errClosed}
		ctx, end, err := l.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "svc: Run called twice") {
			t.Fatalf("second Start: %v", err)
		}
		drained := make(chan struct{})
		go func() {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // the drain
			close(drained)
			end()
		}()
		if err := l.Close(time.Second, func(context.Context) { t.Error("release called for a running Run") }); err != nil {
			t.Fatal(err)
		}
		select {
		case <-drained:
		default:
			t.Fatal("Close returned before the drain")
		}
	})

	t.Run("a run that does not stop", func(t *testing.T) {
		l := &Lifecycle{Name: "svc", ErrClosed: errClosed}
		if _, _, err := l.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Close waits timeout + 5 s; a negative timeout makes that short.
		err := l.Close(-4900*time.Millisecond, nil)
		if err == nil || !strings.Contains(err.Error(), "did not stop") {
			t.Fatalf("Close: %v", err)
		}
		if err2 := l.Close(time.Second, nil); err2 != err {
			t.Fatalf("a later Close gave %v, not the first result", err2)
		}
	})
}
