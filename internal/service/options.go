package service

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/daemon"
)

// Defaults of Options.
const (
	DefaultGroup           = "whenthen"
	DefaultMetricsListen   = ":9464"
	DefaultShutdownTimeout = 30 * time.Second
	DefaultReloadInterval  = 5 * time.Second
	DefaultTimerInterval   = time.Second
	DefaultTimerBatch      = 1000
)

// Decoder kinds.
const (
	DecoderEnvelope = "envelope"
	DecoderDebezium = "debezium"
)

// Options configure a [Service]. Zero values take the defaults given with
// each field.
type Options struct {
	Kafka daemon.KafkaOptions
	Redis daemon.RedisOptions

	// Rules are the automation files and directories (required).
	Rules []string
	// Schema is the schema file declaring custom fields; "" for the
	// standard schema. It is read once: changing it needs a restart.
	Schema string
	// Decoder chooses how input messages are read.
	Decoder DecoderOptions

	// StateCacheBytes is the memory, over all input partitions, of the
	// caches of record snapshots that spare the engine a Redis read per
	// event (engine.StateCache); default engine.DefaultCacheBytes (64 MiB),
	// negative turns them off.
	StateCacheBytes int64
	// BatchSize is the most messages of one partition processed as one
	// batch; default 500.
	BatchSize int

	// MetricsListen is the address of the HTTP server serving /metrics,
	// /healthz and /readyz; default ":9464".
	MetricsListen string

	// Logger receives the service's log. When nil, one is built from
	// LogFormat ("json", the default, or "text") and LogLevel ("debug",
	// "info", the default, "warn" or "error"), writing to LogOutput
	// (default os.Stderr).
	Logger    *slog.Logger
	LogFormat string
	LogLevel  string
	LogOutput io.Writer

	// ShutdownTimeout bounds the drain once Run's context is done: the
	// batches in flight, the final offset commit, and closing the Kafka
	// reader and writers, Redis and the HTTP server; default 30s.
	ShutdownTimeout time.Duration

	// DedupTTL is how long action ids are remembered (at least the input
	// topic's retention); default 7 days. SnapshotTTL is how long a
	// record's last known state is kept; default 90 days.
	DedupTTL    time.Duration
	SnapshotTTL time.Duration
	// SnapshotEncoding is the form record snapshots are written in
	// (store.Options.SnapshotEncoding): "binary" (the default) or "json".
	SnapshotEncoding string

	// ReloadInterval is how often the rule files are checked for changes
	// (modification time, size, files added or removed), which reloads
	// them; default 5s; negative disables the check (Reload still works).
	ReloadInterval time.Duration
	// TimerInterval is how often due date timers are fired; default 1s.
	TimerInterval time.Duration
	// TimerBatch is the most timers fired at once; default 1000.
	TimerBatch int

	// Clock is the engine's time source; default time.Now.
	Clock func() time.Time
}

// DecoderOptions choose the input decoder.
type DecoderOptions struct {
	// Kind is "envelope" (the default: docs/events.md) or "debezium".
	Kind string
	// Tables map Debezium tables to objects (required for debezium).
	Tables map[string]ingest.TableMapping
	// UnavailableValue is Debezium's unavailable-value placeholder;
	// default "__debezium_unavailable_value".
	UnavailableValue string
	// MaxBytes is the largest input message accepted; default 1 MiB.
	MaxBytes int
	// MaxDepth is the deepest nesting of JSON objects and arrays accepted
	// in a message; default 32 (at least 8). MaxElements is the most
	// entries of one JSON array or object; default 4096, and at least the
	// list and map limits below.
	MaxDepth    int
	MaxElements int
	// Limits cap record values (string bytes, list length, map(string,
	// dyn) entries and nesting); default crm.DefaultLimits. The rules'
	// cost estimates assume the same limits.
	Limits crm.Limits
}

// withDefaults returns opts with its defaults filled in, or the first
// invalid option.
func (o Options) withDefaults() (Options, error) {
	if err := o.Validate(); err != nil {
		return o, err
	}
	k := &o.Kafka
	if k.Group == "" {
		k.Group = DefaultGroup
	}
	if k.InputTopic == "" {
		k.InputTopic = ingest.DefaultTopic
	}
	if k.ActionsTopic == "" {
		k.ActionsTopic = actions.DefaultActionsTopic
	}
	if k.RunsTopic == "" {
		k.RunsTopic = actions.DefaultRunsTopic
	}
	if k.DLQTopic == "" {
		k.DLQTopic = actions.DefaultDLQTopic
	}
	if o.Redis.URL == "" {
		o.Redis.URL = daemon.DefaultRedisURL
	}
	if o.Decoder.Kind == "" {
		o.Decoder.Kind = DecoderEnvelope
	}
	if o.StateCacheBytes == 0 {
		o.StateCacheBytes = engine.DefaultCacheBytes
	}
	if o.BatchSize == 0 {
		o.BatchSize = consumer.DefaultBatchSize
	}
	if o.MetricsListen == "" {
		o.MetricsListen = DefaultMetricsListen
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.ReloadInterval == 0 {
		o.ReloadInterval = DefaultReloadInterval
	}
	if o.TimerInterval == 0 {
		o.TimerInterval = DefaultTimerInterval
	}
	if o.TimerBatch == 0 {
		o.TimerBatch = DefaultTimerBatch
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	k.SASL.Mechanism = strings.ToUpper(k.SASL.Mechanism)
	return o, nil
}

// Validate reports every invalid option, without touching files or the
// network (New reports what it finds there).
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	k := o.Kafka
	if err := k.Validate(); err != nil {
		errs = append(errs, err)
	}
	topics := map[string]string{}
	for _, t := range []struct{ name, value, def string }{
		{"input", k.InputTopic, ingest.DefaultTopic},
		{"actions", k.ActionsTopic, actions.DefaultActionsTopic},
		{"runs", k.RunsTopic, actions.DefaultRunsTopic},
		{"dead-letter", k.DLQTopic, actions.DefaultDLQTopic},
	} {
		v := t.value
		if v == "" {
			v = t.def
		}
		if other, dup := topics[v]; dup {
			bad("the %s and %s topics are both %q", other, t.name, v)
		}
		topics[v] = t.name
	}
	for name, d := range map[string]time.Duration{
		"shutdown timeout": o.ShutdownTimeout, "dedup TTL": o.DedupTTL, "snapshot TTL": o.SnapshotTTL,
		"timer interval": o.TimerInterval,
	} {
		if d < 0 {
			bad("negative %s %v", name, d)
		}
	}
	if err := o.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(o.Rules) == 0 {
		bad("no rule files")
	}
	if err := o.Decoder.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.BatchSize < 0 || o.BatchSize > 100_000 {
		bad("batch size %d: want 1 to 100000", o.BatchSize)
	}
	if o.TimerBatch < 0 {
		bad("negative timer batch %d", o.TimerBatch)
	}
	if o.Logger == nil {
		if err := daemon.ValidateLog(o.LogFormat, o.LogLevel); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Validate reports every invalid decoder option, without building the
// decoder (NewDecoder checks the table mappings against the schema).
func (o DecoderOptions) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch o.Kind {
	case "", DecoderEnvelope:
		if len(o.Tables) > 0 {
			bad("Debezium tables given for the envelope decoder")
		}
	case DecoderDebezium:
		if len(o.Tables) == 0 {
			bad("the debezium decoder needs a table mapping")
		}
	default:
		bad("decoder %q: want envelope or debezium", o.Kind)
	}
	if o.MaxBytes < 0 {
		bad("negative decoder max bytes %d", o.MaxBytes)
	}
	if d := o.MaxDepth; d < 0 || (d > 0 && d < 8) {
		bad("decoder max depth %d: want 8 or more (0 for the default)", d)
	}
	if o.MaxElements < 0 {
		bad("negative decoder max elements %d", o.MaxElements)
	}
	if l := o.Limits; l.MaxStringBytes < 0 || l.MaxListLen < 0 || l.MaxMapEntries < 0 || l.MaxDepth < 0 {
		bad("negative record value limit %+v", l)
	}
	return errors.Join(errs...)
}
