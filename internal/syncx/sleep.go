package syncx

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits for d or until ctx is done; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Jitter draws a wait from [d/2, d]: the retries' backoff, spread so that
// instances that failed together do not retry together.
func Jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
