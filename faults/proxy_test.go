//go:build linux

package faults

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/testenv"
)

// TestProxy checks the proxy's faults against a real redis-server.
func TestProxy(t *testing.T) {
	srv := testenv.StartRedis(t)
	p, err := NewProxy("127.0.0.1:0", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer direct.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	p.Cut()
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Error("GET through a cut proxy succeeded")
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("after Restore: %q, %v", v, err)
	}

	// A reply lost: the command ran.
	fired := p.CutOnReply(func(b []byte) bool { return bytes.Contains(b, []byte("OK")) })
	if err := c.Set(ctx, "k2", "applied", 0).Err(); err == nil {
		t.Error("SET whose reply was cut succeeded")
	}
	<-fired
	if v, _ := direct.Get(ctx, "k2").Result(); v != "applied" {
		t.Errorf("the command whose reply was lost was not applied: %q", v)
	}
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Error("GET after CutOnReply fired succeeded: the proxy is not cut")
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	p.SetReplyLoss(1)
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Error("GET with every reply lost succeeded")
	}
	p.SetReplyLoss(0)
	p.SetLatency(100 * time.Millisecond)
	begin := time.Now()
	if err := c.Get(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 200*time.Millisecond {
		t.Errorf("GET took %v with 100ms latency each way", d)
	}
	if acc, resets, lost := p.Stats(); acc < 3 || resets < 1 || lost < 2 {
		t.Errorf("stats: accepted %d, resets %d, lost %d", acc, resets, lost)
	}
}
