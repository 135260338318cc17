package syncx

import (
	"sync"
	"testing"
	"time"
)

func TestWaitTimeout(t *testing.T) {
	var wg sync.WaitGroup
	if !WaitTimeout(&wg, time.Minute) {
		t.Fatal("an idle WaitGroup: not finished")
	}
	release := make(chan struct{})
	wg.Go(func() { <-release })
	if WaitTimeout(&wg, 10*time.Millisecond) || WaitTimeout(&wg, -time.Second) {
		t.Fatal("a running goroutine: finished")
	}
	close(release)
	if !WaitTimeout(&wg, time.Minute) {
		t.Fatal("the goroutine ended: not finished")
	}
}
