package store

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
)

// Migration is one numbered schema change of a driver, applied once in a
// transaction of its own and recorded in schema_migrations.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^(\d{3,})_([a-z0-9_]+)\.sql$`)

// ParseMigrations reads the migrations in dir of fsys: files named
// NNN_name.sql, numbered from 1 without gaps. Drivers embed theirs.
func ParseMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("store: migrations: %s is not named NNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: migrations: %w", err)
		}
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("store: migrations: want version %d, found %d (%s): versions run from 1 without gaps", i+1, m.Version, m.Name)
		}
	}
	return out, nil
}

// Pending returns the migrations after version current, or an error if
// the database is at a version newer than the last one known.
func Pending(all []Migration, current int) ([]Migration, error) {
	if n := len(all); current > n {
		return nil, fmt.Errorf("store: the database schema is at version %d, newer than this binary knows (%d): upgrade whenthen", current, n)
	}
	return all[current:], nil
}
