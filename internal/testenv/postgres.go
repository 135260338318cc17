package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPostgresURL names the environment variable that points tests at a
// PostgreSQL server: a URL whose user may create databases. Default
// DefaultPostgresURL, the server `make test` provides (scripts/with-services.sh).
const EnvPostgresURL = "WHENTHEN_TEST_POSTGRES_URL"

// DefaultPostgresURL is the server the tests use when EnvPostgresURL is
// not set: the local one, with trust authentication.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL returns the URL of the server the tests use (see
// EnvPostgresURL).
func PostgresURL() string {
	if u := os.Getenv(EnvPostgresURL); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Postgres creates a database of its own for the calling test,
// whenthen_test_<random>, on the server of PostgresURL, and returns its
// URL; the database is dropped (its connections ended) at t.Cleanup. If
// the server cannot be reached the test fails, never skips, saying how
// to provide one.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := PostgresURL()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL at %s does not answer: %v\n"+
			"Run the tests through `make test` (scripts/with-services.sh starts or installs PostgreSQL), "+
			"or set %s=postgres://USER@HOST:PORT/DB to a server whose user may create databases.",
			redactURL(admin), err, EnvPostgresURL)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "whenthen_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testenv: %s: %v", EnvPostgresURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// redactURL shows a URL without its password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
