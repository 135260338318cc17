package childproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	readyTimeout = 10 * time.Second // a fresh redis-server answers in milliseconds
	startTries   = 5                // fresh ports tried when another process takes ours
)

// RedisOptions configure StartRedis.
type RedisOptions struct {
	// Dir is the server's working and data directory (--dir); its log,
	// redis.log, is kept there (required).
	Dir string
	// Port is the port to listen on; 0 takes a free one, and another if
	// a process takes it before redis-server binds it.
	Port int
	// Args are appended to the defaults (--port, --bind 127.0.0.1,
	// --save "", --appendonly no, --dir); later arguments win.
	Args []string
	// Bin is the redis-server binary; default the one on PATH.
	Bin string
}

// Redis is a redis-server child process.
type Redis struct {
	*Process
	Port int
	// LogPath is the server's log; every start on the same Dir appends
	// to it.
	LogPath string
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// URL is the server's redis:// URL, database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// StartRedis starts a redis-server child and waits until it is ready: it
// answers PING (any reply, so a server with requirepass counts) or its log
// says it accepts connections (a server listening on a TLS port only).
func StartRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	if o.Dir == "" {
		return nil, errors.New("childproc: RedisOptions.Dir is required")
	}
	bin := o.Bin
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, err
		}
	}
	tries := 1
	if o.Port == 0 {
		tries = startTries
	}
	var err error
	for range tries {
		port := o.Port
		if port == 0 {
			if port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		var r *Redis
		if r, err = startRedis(ctx, bin, port, o); err == nil || ctx.Err() != nil {
			return r, err
		}
	}
	return nil, err
}

func startRedis(ctx context.Context, bin string, port int, o RedisOptions) (*Redis, error) {
	r := &Redis{Port: port, LogPath: filepath.Join(o.Dir, "redis.log")}
	logf, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()                      // the child keeps its own descriptor
	logStart, _ := logf.Seek(0, io.SeekEnd) // earlier starts' lines are not this start's
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", o.Dir,
	}, o.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if r.Process, err = Start(cmd); err != nil {
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	if err := r.waitReady(ctx, logStart); err != nil {
		r.Kill()
		return nil, fmt.Errorf("redis-server on %s: %w\n%s", r.Addr(), err, logTail(r.LogPath, logStart, 10))
	}
	return r, nil
}

func (r *Redis) waitReady(ctx context.Context, logStart int64) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-r.Done():
			return errors.New("exited during startup")
		default:
		}
		if answersPing(r.Addr()) || logSaysReady(r.LogPath, logStart) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", readyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func answersPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-"))
}

// logSaysReady reports whether the log, from offset start on, says the
// server is ready.
func logSaysReady(path string, start int64) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < start {
		return false
	}
	return bytes.Contains(b[start:], []byte("Ready to accept connections"))
}

// logTail returns the last n lines of the log from offset start on.
func logTail(path string, start int64, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if int64(len(b)) >= start {
		b = b[start:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
