// Package childproc starts child processes that do not outlive their
// parent, redis-server among them: the tests (internal/testenv) and the
// benchmark suite (bench) start theirs here.
//
// On Linux a child gets SIGKILL from the kernel when the thread that
// started it ends (Pdeathsig). Start keeps that thread alive until the
// child exits, so the signal means "the parent died"; elsewhere a child
// outlives a parent killed without cleanup.
package childproc

import (
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Process is a started child and the goroutine that reaps it.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the child has exited and been reaped
	err  error         // Wait's error, set before done is closed
}

// Start starts cmd from a goroutine locked to its OS thread until the
// child exits, with the parent-death signal set (Linux).
func Start(cmd *exec.Cmd) (*Process, error) {
	setPdeathsig(cmd)
	p := &Process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the child's exit error (exec.Cmd.Wait's) once Done is closed;
// nil before.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Signal sends sig to the child unless it has exited.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig) // it may exit between the check and here
	}
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
// Stopping an exited child does nothing.
func (p *Process) Stop(grace time.Duration) {
	p.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Kill()
	}
}

// Kill sends SIGKILL and waits for the exit. Killing an exited child does
// nothing.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choosing a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
