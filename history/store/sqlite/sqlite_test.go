package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/history/store/sqlite"
	"github.com/whenthen/whenthen/history/store/storetest"
)

func open(t *testing.T) store.Driver {
	d, err := sqlite.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if _, err := d.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

// TestSchemaTooNew refuses a file written by a newer whenthen.
func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	d, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name) VALUES (999, 'future')`); err != nil {
		t.Fatal(err)
	}
	_, err = d.Migrate(context.Background())
	if err == nil || !strings.Contains(err.Error(), "newer than this binary knows") {
		t.Fatalf("migrating a newer schema: %v", err)
	}
}
