package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/childproc"
	"github.com/whenthen/whenthen/internal/redisx"
	"github.com/whenthen/whenthen/internal/syncx"
)

// benchRedis is the Redis a suite runs against, and what it is.
type benchRedis struct {
	URL string
	// Kind says which Redis it is, for the report: "redis-server 7.0.15
	// (child process)" or "given (--redis-url)".
	Kind string
	// Prefix is unique to the run; every key the suite writes starts
	// with it.
	Prefix string
	// PID is the redis-server's process id when the suite started it,
	// else 0.
	PID  int
	stop func()
}

// startRedis returns the Redis at url if it is not empty, else a
// redis-server started as a child process on a free port. Without either
// it fails: figures measured on an emulation of Redis would mislead.
func startRedis(ctx context.Context, url string) (*benchRedis, error) {
	prefix := "wt-bench:" + randomHex(4) + ":"
	if url != "" {
		c, err := newRedisClient(url)
		if err != nil {
			return nil, err
		}
		err = ping(ctx, c)
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("redis at --redis-url: %w", err)
		}
		r := &benchRedis{URL: url, Kind: "given (--redis-url)", Prefix: prefix}
		r.stop = func() { _ = redisx.DeletePrefixAt(url, prefix, 30*time.Second) }
		return r, nil
	}
	if bin, err := exec.LookPath("redis-server"); err == nil {
		r, err := startRedisServer(ctx, bin)
		if err != nil {
			return nil, err
		}
		r.Prefix = prefix
		return r, nil
	}
	return nil, errors.New("no redis-server on PATH: install it (apt-get install redis-server) or pass --redis-url redis://HOST:PORT/DB")
}

// Close stops a Redis the suite started, or deletes the suite's keys from
// a given one.
func (r *benchRedis) Close() {
	if r != nil && r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

func startRedisServer(ctx context.Context, bin string) (*benchRedis, error) {
	dir, err := os.MkdirTemp("", "whenthen-bench-redis-")
	if err != nil {
		return nil, err
	}
	version := "redis-server"
	if out, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		// "Redis server v=7.0.15 sha=..."
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				version += " " + v
			}
		}
	}
	srv, err := childproc.StartRedis(ctx, childproc.RedisOptions{Bin: bin, Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &benchRedis{URL: srv.URL(), Kind: version + " (child process on " + srv.Addr() + ")",
		PID: srv.Pid(), stop: func() { srv.Stop(5 * time.Second); os.RemoveAll(dir) }}, nil
}

func ping(ctx context.Context, c redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// newRedisClient returns a client of url: one server, or a cluster
// (redisx.ParseURL).
func newRedisClient(url string) (redis.UniversalClient, error) {
	c, err := redisx.NewClient(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sleepCtx waits for d or until ctx is done, when it returns ctx's error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if !syncx.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}
