package daemon

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Lifecycle is what every service of the binary (run, deliver, history)
// keeps to be run once and closed any number of times: Run starts with
// Start, Close cancels a running Run and waits for its drain, or releases
// what New opened when Run never started.
type Lifecycle struct {
	// Name starts the errors ("delivery", "history", "service").
	Name string
	// ErrClosed is what Start returns after Close.
	ErrClosed error

	mu        sync.Mutex
	closed    bool
	cancel    context.CancelFunc // set by Start: a Run began
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Start begins a Run: the context it returns ends at Close, and end must
// be deferred by Run. It fails after Close (ErrClosed) and on a second Run.
func (l *Lifecycle) Start(ctx context.Context) (context.Context, func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, nil, l.ErrClosed
	case l.cancel != nil:
		return nil, nil, errors.New(l.Name + ": Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	l.cancel, l.done = cancel, make(chan struct{})
	done := l.done
	return ctx, func() { cancel(); close(done) }, nil
}

// Close cancels a running Run and waits for it, for at most timeout + 5 s;
// when Run never started it calls release within timeout. It is
// idempotent and safe for concurrent use; later calls return the first
// one's result.
func (l *Lifecycle) Close(timeout time.Duration, release func(context.Context)) error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		cancel, done := l.cancel, l.done
		l.mu.Unlock()
		if cancel == nil {
			ctx, c := context.WithTimeout(context.Background(), timeout)
			defer c()
			release(ctx)
			return
		}
		cancel()
		t := time.NewTimer(timeout + 5*time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			l.closeErr = errors.New(l.Name + ": Run did not stop within the shutdown timeout")
		}
	})
	return l.closeErr
}
