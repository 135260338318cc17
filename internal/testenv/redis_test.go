package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/testenv"
)

func TestRedisPrefixes(t *testing.T) {
	ctx := context.Background()
	var (
		mu       sync.Mutex
		prefixes = map[string]string{} // prefix -> subtest
	)
	for _, name := range []string{"a", "b", "a/b", "with space[*]"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, prefix := testenv.Redis(t)
			if strings.ContainsAny(prefix, "*?[]\\ ") || !strings.HasPrefix(prefix, "t:") || !strings.HasSuffix(prefix, ":") {
				t.Errorf("prefix %q: want t:<name>:<random>: free of glob characters", prefix)
			}
			mu.Lock()
			if other, ok := prefixes[prefix]; ok {
				t.Errorf("prefix %q given to both %s and %s", prefix, other, t.Name())
			}
			prefixes[prefix] = t.Name()
			mu.Unlock()

			if err := c.Set(ctx, prefix+"k", t.Name(), 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			got, err := c.Get(ctx, prefix+"k").Result()
			if err != nil || got != t.Name() {
				t.Fatalf("GET = %q, %v; want %q", got, err, t.Name())
			}
		})
	}

	// The subtests have ended: their keys must be gone.
	c, _ := testenv.Redis(t)
	for prefix := range prefixes {
		n, err := c.Exists(ctx, prefix+"k").Result()
		if err != nil || n != 0 {
			t.Errorf("EXISTS %sk after its test = %d, %v; want 0", prefix, n, err)
		}
	}
}

func TestRedisURLFromEnv(t *testing.T) {
	const u = "redis://127.0.0.1:1/3"
	t.Setenv(testenv.EnvRedisURL, u)
	if got := testenv.RedisURL(t); got != u {
		t.Errorf("RedisURL = %q, want %q from %s", got, u, testenv.EnvRedisURL)
	}
}

// fatalTB records the first Fatal and ends the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatal(args ...any) { f.msg = fmt.Sprint(args...); runtime.Goexit() }
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartRedisWithoutServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testenv.StartRedis(f)
	}()
	<-done
	for _, want := range []string{"apt-get install redis-server", testenv.EnvRedisURL} {
		if !strings.Contains(f.msg, want) {
			t.Errorf("failure %q does not mention %q", f.msg, want)
		}
	}
}

func TestStartRedisKillRestart(t *testing.T) {
	ctx := context.Background()
	s := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING after Kill succeeded")
	}
	s.Kill() // killing a stopped server does nothing

	addr := s.Addr()
	s.Restart()
	if s.Addr() != addr {
		t.Errorf("Addr after Restart = %s, want %s", s.Addr(), addr)
	}
	pingEventually(t, c)
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET k after restart: err %v, want redis.Nil (no persistence)", err)
	}

	s.Restart() // from running
	pingEventually(t, c)
	s.Stop()
	s.Stop()
}

func TestStartRedisArgs(t *testing.T) {
	ctx := context.Background()
	s := testenv.StartRedis(t, "--requirepass", "secret")
	anon := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without password: %v, want NOAUTH", err)
	}
	opts, err := redis.ParseURL(strings.Replace(s.URL(), "redis://", "redis://:secret@", 1))
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	auth := redis.NewClient(opts)
	defer auth.Close()
	if err := auth.Ping(ctx).Err(); err != nil {
		t.Errorf("PING with password: %v", err)
	}
}

// pingEventually pings until the client has dropped the connections that
// died with the old server and its pool dials again (go-redis backs off
// after failed dials), for at most 5s.
func pingEventually(t *testing.T, c *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PING after Restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
