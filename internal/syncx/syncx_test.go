package syncx

import (
	"context"
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

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep with a live context did not report that d passed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep with a done context reported that an hour passed")
	}
	if time.Since(start) > time.Minute {
		t.Fatal("Sleep did not end with its context")
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, 3, time.Millisecond, 5 * time.Second} {
		for range 200 {
			if j := Jitter(d); j < d/2 || j > d {
				t.Fatalf("Jitter(%v) = %v, outside [%v, %v]", d, j, d/2, d)
			}
		}
	}
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[Jitter(time.Second)] = true
	}
	if len(seen) < 50 {
		t.Fatalf("100 draws of Jitter(1s) gave %d distinct waits", len(seen))
	}
}
