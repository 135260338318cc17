package postgres_test

import (
	"context"
	"testing"

	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/history/store/postgres"
	"github.com/whenthen/whenthen/history/store/storetest"
	"github.com/whenthen/whenthen/internal/testenv"
)

func open(t testing.TB) store.Driver {
	d, err := postgres.Open(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if _, err := d.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Driver { return open(t) })
}

// TestMigrateConcurrently starts several instances on one empty
// database: each migration is applied once.
func TestMigrateConcurrently(t *testing.T) {
	url := testenv.Postgres(t)
	errs := make(chan error, 4)
	applied := make(chan int, 16)
	for range 4 {
		go func() {
			d, err := postgres.Open(context.Background(), url)
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			vs, err := d.Migrate(context.Background())
			for _, v := range vs {
				applied <- v
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(applied)
	seen := map[int]int{}
	for v := range applied {
		seen[v]++
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("migration %d applied %d times", v, n)
		}
	}
	if len(seen) == 0 {
		t.Fatal("no migration applied")
	}
}

func TestOpenRedactsPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:s3cret@host:notaport/db")
	if err == nil {
		t.Fatal("a bad URL opened")
	}
	if s := err.Error(); contains(s, "s3cret") {
		t.Fatalf("error shows the password: %s", s)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
