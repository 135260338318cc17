package childproc

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not on PATH: install it (apt-get install redis-server)")
	}
	dir := t.TempDir()
	r, err := StartRedis(context.Background(), RedisOptions{Dir: dir, Args: []string{"--requirepass", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !answersPing(r.Addr()) || !strings.HasPrefix(r.URL(), "redis://127.0.0.1:") || r.Pid() <= 0 {
		t.Fatalf("server %s (pid %d) does not answer", r.Addr(), r.Pid())
	}
	r.Stop(5 * time.Second)
	if answersPing(r.Addr()) {
		t.Error("the server answers after Stop")
	}
	r.Stop(time.Second) // stopping a stopped server does nothing
	r.Kill()
	// A restart on the same port and directory appends to the log.
	r2, err := StartRedis(context.Background(), RedisOptions{Dir: dir, Port: r.Port})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Kill()
	if r2.Addr() != r.Addr() || r2.LogPath != r.LogPath {
		t.Errorf("restart at %s, log %s; want %s, %s", r2.Addr(), r2.LogPath, r.Addr(), r.LogPath)
	}
}

func TestProcessExit(t *testing.T) {
	p, err := Start(exec.Command("sh", "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if ee, ok := p.Err().(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("Err = %v, want exit status 3", p.Err())
	}
	p.Kill() // an exited child: nothing to do
	p, err = Start(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Err() != nil {
		t.Fatalf("Err of a running child: %v", p.Err())
	}
	p.Stop(5 * time.Second)
	if p.Err() == nil {
		t.Fatal("Err after SIGTERM: nil")
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	l.Close()
}
