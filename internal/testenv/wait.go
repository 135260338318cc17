package testenv

import (
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whenthen/whenthen/internal/childproc"
)

// WaitFor polls cond every 10ms until it holds, failing the test after
// timeout with what it was waiting for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logger logs warnings to the test log; WHENTHEN_TEST_LOG=debug logs
// everything to stderr.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("WHENTHEN_TEST_LOG") == "debug" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// tWriter writes to the test log until the test ends, then drops what
// goroutines abandoned at shutdown (a hung kafka-go reader) still write.
type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// FreeAddr returns a 127.0.0.1:PORT address that was free a moment ago,
// for a server the test starts (childproc.FreePort).
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}
