//go:build race

package crm

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of pooled code are not meaningful.
const raceEnabled = true
