package store

import (
	"context"
	"fmt"
	"time"
)

// DefaultDeleteBatch is the most rows one retention statement deletes.
const DefaultDeleteBatch = 5000

// Deleted counts the rows one Expire call deleted, by table.
type Deleted map[Table]int64

// Expire deletes what is older than before: runs (by ran_at), actions
// (fired_at), outcomes (at), hourly counts (their hour) and last runs
// and errors. Each statement deletes at most batch rows (default
// DefaultDeleteBatch) in a transaction of its own, so that no delete
// holds its locks for long and writes go on between them; pause, if
// positive, is waited between statements. It stops at the first error
// or when ctx is done.
func (s *Store) Expire(ctx context.Context, before time.Time, batch int, pause time.Duration) (Deleted, error) {
	if batch <= 0 {
		batch = DefaultDeleteBatch
	}
	before = before.UTC()
	done := Deleted{}
	drain := func(t Table, ws string) error {
		for {
			n, err := s.d.Delete(ctx, t, ws, before, batch)
			if err != nil {
				return s.counted(fmt.Errorf("store: expire %s: %w", t, err))
			}
			done[t] += n
			s.m.deleted.WithLabelValues(string(t)).Add(float64(n))
			if n < int64(batch) {
				return nil
			}
			if pause > 0 {
				t := time.NewTimer(pause)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		}
	}
	wss, err := s.d.Workspaces(ctx)
	if err != nil {
		return done, s.counted(fmt.Errorf("store: expire: workspaces: %w", err))
	}
	for _, ws := range wss {
		if err := drain(TableRuns, ws); err != nil {
			return done, err
		}
	}
	for _, t := range []Table{TableActions, TableOutcomes, TableCounts, TableLatest} {
		if err := drain(t, ""); err != nil {
			return done, err
		}
	}
	return done, nil
}
