package history

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/internal/daemon"
)

// Defaults of Options.
const (
	DefaultGroup             = "whenthen-history"
	DefaultDB                = "sqlite:whenthen-history.db"
	DefaultListen            = ":9466"
	DefaultRetention         = 720 * time.Hour
	DefaultRetentionInterval = 10 * time.Minute
	DefaultBatchSize         = 1000
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultReloadInterval    = 5 * time.Second
	DefaultRedisPrefix       = "wt:"
)

// Options configure a [Service]. Zero values take the defaults given with
// each field.
type Options struct {
	// Kafka are the brokers, TLS, SASL and consumer tuning, as `whenthen
	// run` takes them (daemon.KafkaOptions); Group defaults to
	// "whenthen-history" and names the three groups GROUP-runs,
	// GROUP-actions and GROUP-outcomes, one per topic; RunsTopic, ActionsTopic and DLQTopic to the
	// engine's defaults. InputTopic is not used.
	Kafka daemon.KafkaOptions
	// OutcomesTopic is the delivery outcomes' topic; default
	// "automations.outcomes".
	OutcomesTopic string

	// DB is the database: postgres://… (or postgresql://…), or
	// sqlite:PATH for the embedded store; default
	// "sqlite:whenthen-history.db" in the working directory.
	DB string
	// Retention is how long runs, actions and outcomes are kept; default
	// 720h. RetentionInterval is how often older ones are deleted;
	// default 10m, negative never. DeleteBatch bounds one delete
	// statement; default 5000.
	Retention         time.Duration
	RetentionInterval time.Duration
	DeleteBatch       int

	// Rules and Schema are the automation files and schema, as `whenthen
	// run` loads them: the overview lists every automation of the live
	// rules and the Why not? check evaluates them. Optional: without
	// rules the overview lists the automations that have runs, and the
	// check is unavailable. ReloadInterval is how often the files are
	// checked for changes; default 5s, negative never.
	Rules          []string
	Schema         string
	ReloadInterval time.Duration

	// Redis is the engine's Redis, read (never written) by the Why not?
	// check; URL "" leaves the check unavailable. Prefix defaults to
	// "wt:".
	Redis daemon.RedisOptions

	// Listen is the address of the page, the API, /metrics, /healthz and
	// /readyz; default ":9466".
	Listen string
	// Tokens may read the history (see package history/auth).
	Tokens []auth.Token
	// SessionKey keys the page's sessions (at least 32 bytes); default a
	// random one per process.
	SessionKey []byte

	// BatchSize is the most records of one partition written in one
	// transaction; default 1000.
	BatchSize int

	// Logger receives the service's log; when nil one is built from
	// LogFormat and LogLevel on LogOutput (daemon.NewLogger).
	Logger    *slog.Logger
	LogFormat string
	LogLevel  string
	LogOutput io.Writer

	// ShutdownTimeout bounds the drain once Run's context is done;
	// default 30s.
	ShutdownTimeout time.Duration
	// Clock is the time source of the queries and retention; default
	// time.Now.
	Clock func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	k := &o.Kafka
	if k.Group == "" {
		k.Group = DefaultGroup
	}
	if k.RunsTopic == "" {
		k.RunsTopic = actions.DefaultRunsTopic
	}
	if k.ActionsTopic == "" {
		k.ActionsTopic = actions.DefaultActionsTopic
	}
	if k.DLQTopic == "" {
		k.DLQTopic = actions.DefaultDLQTopic
	}
	if o.OutcomesTopic == "" {
		o.OutcomesTopic = actions.DefaultOutcomesTopic
	}
	k.SASL.Mechanism = strings.ToUpper(k.SASL.Mechanism)
	if o.DB == "" {
		o.DB = DefaultDB
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.RetentionInterval == 0 {
		o.RetentionInterval = DefaultRetentionInterval
	}
	if o.ReloadInterval == 0 {
		o.ReloadInterval = DefaultReloadInterval
	}
	if o.Redis.URL != "" && o.Redis.Prefix == "" {
		o.Redis.Prefix = DefaultRedisPrefix
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o, o.Validate()
}

// Validate reports every invalid option, without touching files or the
// network.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	k := o.Kafka
	if err := k.Validate(); err != nil {
		errs = append(errs, err)
	}
	topics := map[string]string{}
	for _, t := range [][2]string{{"runs", k.RunsTopic}, {"actions", k.ActionsTopic}, {"outcomes", o.OutcomesTopic}, {"dead-letter", k.DLQTopic}} {
		if t[1] == "" {
			continue
		}
		if other, dup := topics[t[1]]; dup {
			bad("the %s and %s topics are both %q", other, t[0], t[1])
		}
		topics[t[1]] = t[0]
	}
	if _, _, err := ParseDB(o.DB); o.DB != "" && err != nil {
		errs = append(errs, err)
	}
	if o.Retention < 0 || o.DeleteBatch < 0 || o.BatchSize < 0 || o.BatchSize > 100_000 || o.ShutdownTimeout < 0 {
		bad("retention, delete batch, batch size (at most 100000) and shutdown timeout must not be negative")
	}
	if o.Retention > 0 && o.Retention < time.Hour {
		bad("retention %v: want at least 1h", o.Retention)
	}
	if err := o.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(o.SessionKey) > 0 && len(o.SessionKey) < 32 {
		bad("session key: want at least 32 bytes")
	}
	if o.Logger == nil {
		if err := daemon.ValidateLog(o.LogFormat, o.LogLevel); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Database kinds of ParseDB.
const (
	DBPostgres = "postgres"
	DBSQLite   = "sqlite"
)

// ParseDB reads a database setting: postgres://… or postgresql://… (kind
// "postgres", the URL as is), or sqlite:PATH (kind "sqlite", the path).
func ParseDB(s string) (kind, dsn string, err error) {
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return DBPostgres, s, nil
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//")
		if p == "" {
			return "", "", errors.New("history database sqlite: needs a path: sqlite:PATH")
		}
		return DBSQLite, p, nil
	}
	return "", "", errors.New("history database: want postgres://USER@HOST:PORT/DB or sqlite:PATH")
}
