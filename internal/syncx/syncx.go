// Package syncx holds the waits the services share beside package sync:
// a bounded wait for a WaitGroup (the drains), a sleep that ends with its
// context, and the jitter of retry backoffs. It is at the bottom of the
// import graph, so that the consumer, the pipeline and the services above
// them use the same ones.
package syncx

import (
	"sync"
	"time"
)

// WaitTimeout waits for wg for at most d (none if d is not positive); it
// reports whether wg finished.
func WaitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
