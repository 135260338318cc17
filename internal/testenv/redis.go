package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/childproc"
	"github.com/whenthen/whenthen/internal/redisx"
)

// EnvRedisURL names the environment variable that points tests at an
// already running Redis instead of one started by this package.
const EnvRedisURL = "WHENTHEN_TEST_REDIS_URL"

const (
	readyTimeout = 10 * time.Second // a fresh redis-server answers in milliseconds
	stopTimeout  = 5 * time.Second  // SIGTERM grace before SIGKILL
)

// shared is the one redis-server per test binary behind RedisURL and Redis.
var shared struct {
	once sync.Once
	url  string
	srv  *RedisServer
	err  error
}

// Main runs the tests of a package and then stops the Redis this package
// started for them. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	stopShared()
	stopSharedCluster()
	os.Exit(code)
}

// RedisURL returns the redis:// URL of the Redis shared by the tests of this
// test binary: WHENTHEN_TEST_REDIS_URL if set, otherwise a redis-server it
// starts once. It fails the test if neither is possible.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvRedisURL); u != "" {
		return u
	}
	shared.once.Do(startShared)
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.url
}

// Redis returns a client of the shared Redis (see RedisURL) and a key prefix
// unique to this test, "t:<test name>:<random>:". The test must prefix every
// key it writes; the keys under the prefix are deleted and the client closed
// at t.Cleanup.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("testenv: %s: %v", EnvRedisURL, err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("testenv: redis at %s does not answer PING: %v", opts.Addr, err)
	}
	return c, ownPrefix(t, c)
}

// ownPrefix is a key prefix of the test's own in c's Redis: its keys are
// deleted and c closed when the test ends.
func ownPrefix(t testing.TB, c redis.UniversalClient) string {
	prefix := "t:" + keySafe(t.Name()) + ":" + randomHex(4) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if err := redisx.DeletePrefix(ctx, c, prefix); err != nil {
			t.Logf("testenv: deleting keys %s*: %v", prefix, err)
		}
		c.Close()
	})
	return prefix
}

// RedisServer is a redis-server process owned by one test. Its port stays
// the same across Stop, Kill and Restart, so clients reconnect to it. The
// methods fail the test on error and must be called from the test goroutine.
type RedisServer struct {
	t    testing.TB // nil for the shared server
	dir  string
	args []string

	mu   sync.Mutex
	port int
	srv  *childproc.Redis // nil while stopped
}

// StartRedis starts a redis-server dedicated to this test on a free
// 127.0.0.1 port, with persistence off and args appended to the defaults
// (later arguments win, e.g. "--requirepass", "x"). It is stopped at
// t.Cleanup, and its log is printed if the test failed.
func StartRedis(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	s := &RedisServer{t: t, dir: t.TempDir(), args: args}
	if err := s.startFresh(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: redis-server log (%s):\n%s", s.Addr(), s.logTail(30))
		}
		s.stop(false)
	})
	return s
}

// Addr returns the server's host:port.
func (s *RedisServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns the server's redis:// URL, database 0.
func (s *RedisServer) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Stop shuts the server down with SIGTERM (SIGKILL after 5s) and waits for
// it to exit. Stopping a stopped server does nothing.
func (s *RedisServer) Stop() {
	s.t.Helper()
	s.stop(false)
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it to
// exit. Killing a stopped server does nothing.
func (s *RedisServer) Kill() {
	s.t.Helper()
	s.stop(true)
}

// Restart stops the server if it runs and starts it again on the same port,
// arguments and directory, waiting until it answers. The dataset starts
// empty unless the arguments turned persistence on (e.g. "--appendonly",
// "yes"), in which case the server reloads what it had saved.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.stop(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	// The port was free a moment ago; a short retry covers a client racing
	// for it or a kernel slow to release it.
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.startLocked(s.port)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("testenv: restarting redis-server on port %d: %v", s.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startFresh starts the server on a free port (childproc tries other
// ports if one is taken between choosing it and redis-server binding it).
func (s *RedisServer) startFresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(0); err != nil {
		return fmt.Errorf("testenv: starting redis-server: %w", err)
	}
	return nil
}

func (s *RedisServer) startLocked(port int) error {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return errNoRedis
	}
	srv, err := childproc.StartRedis(context.Background(), childproc.RedisOptions{Dir: s.dir, Port: port, Args: s.args})
	if err != nil {
		return err
	}
	s.srv, s.port = srv, srv.Port
	return nil
}

func (s *RedisServer) stop(kill bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv := s.srv
	if srv == nil {
		return
	}
	s.srv = nil
	if kill {
		srv.Kill()
	} else {
		srv.Stop(stopTimeout)
	}
}

func (s *RedisServer) logPath() string { return filepath.Join(s.dir, "redis.log") }

// logTail returns the last n lines of the server's log.
func (s *RedisServer) logTail(n int) string { return tail(s.logPath(), n) }

var errNoRedis = errors.New("testenv: redis-server is not on PATH and " + EnvRedisURL +
	" is unset: install redis-server (apt-get install redis-server) or set " +
	EnvRedisURL + "=redis://127.0.0.1:6379/0")

func startShared() {
	if _, err := exec.LookPath("redis-server"); err != nil {
		shared.err = errNoRedis
		return
	}
	dir, err := os.MkdirTemp("", "whenthen-testenv-redis-")
	if err != nil {
		shared.err = fmt.Errorf("testenv: %w", err)
		return
	}
	s := &RedisServer{dir: dir}
	if err := s.startFresh(); err != nil {
		os.RemoveAll(dir)
		shared.err = err
		return
	}
	shared.srv = s
	shared.url = s.URL()
}

func stopShared() {
	if s := shared.srv; s != nil {
		s.stop(false)
		os.RemoveAll(s.dir)
	}
}

// keySafe turns a test name into a key segment free of glob characters, so
// the prefix can be used in SCAN MATCH.
func keySafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '_', r == '-', r == '.', r == '/':
			return r
		}
		return '_'
	}, name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
