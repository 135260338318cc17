package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/ingest/consumer"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/service"
	"github.com/whenthen/whenthen/rules"
)

func init() {
	register(&command{name: "run", summary: "run the service: Kafka in, rules, Redis state, actions and runs out", run: runRun})
}

// envPrefix starts the environment variable of each flag:
// --kafka-brokers is WHENTHEN_KAFKA_BROKERS.
const envPrefix = "WHENTHEN_"

// kafkaConfig is the Kafka connection of every service command (run,
// deliver, history), spelled the same in each config file.
type kafkaConfig struct {
	Brokers []string `yaml:"brokers"`
	Group   string   `yaml:"group"`
	TLS     struct {
		Enabled            bool   `yaml:"enabled"`
		CAFile             string `yaml:"ca_file"`
		CertFile           string `yaml:"cert_file"`
		KeyFile            string `yaml:"key_file"`
		ServerName         string `yaml:"server_name"`
		InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	} `yaml:"tls"`
	SASL struct {
		Mechanism string `yaml:"mechanism"`
		Username  string `yaml:"username"`
		Password  string `yaml:"password"`
	} `yaml:"sasl"`
}

// tlsOptions are the TLS settings as the services take them.
func (k *kafkaConfig) tlsOptions() daemon.TLSOptions {
	return daemon.TLSOptions{Enabled: k.TLS.Enabled, CAFile: k.TLS.CAFile, CertFile: k.TLS.CertFile,
		KeyFile: k.TLS.KeyFile, ServerName: k.TLS.ServerName, InsecureSkipVerify: k.TLS.InsecureSkipVerify}
}

// bindSecurityFlags binds the TLS and SASL flags of run, deliver and
// history to k.
func (k *kafkaConfig) bindSecurityFlags(fs *flag.FlagSet) {
	fs.BoolVar(&k.TLS.Enabled, "kafka-tls", k.TLS.Enabled, "connect to Kafka over TLS")
	fs.StringVar(&k.TLS.CAFile, "kafka-tls-ca", k.TLS.CAFile, "PEM `FILE` of the CAs that verify the brokers (default: system roots)")
	fs.StringVar(&k.TLS.CertFile, "kafka-tls-cert", k.TLS.CertFile, "PEM client certificate `FILE`")
	fs.StringVar(&k.TLS.KeyFile, "kafka-tls-key", k.TLS.KeyFile, "PEM client key `FILE`")
	fs.StringVar(&k.TLS.ServerName, "kafka-tls-server-name", k.TLS.ServerName, "`NAME` to verify in the brokers' certificates")
	fs.BoolVar(&k.TLS.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", k.TLS.InsecureSkipVerify, "do not verify the brokers' certificates (tests only)")
	fs.StringVar(&k.SASL.Mechanism, "kafka-sasl-mechanism", k.SASL.Mechanism, "SASL `MECHANISM`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&k.SASL.Username, "kafka-sasl-username", k.SASL.Username, "SASL `USER`")
	fs.StringVar(&k.SASL.Password, "kafka-sasl-password", k.SASL.Password, "SASL `PASSWORD` (prefer "+envPrefix+"KAFKA_SASL_PASSWORD)")
}

// saslOptions are the SASL settings as the services take them.
func (k *kafkaConfig) saslOptions() daemon.SASLOptions {
	return daemon.SASLOptions{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: k.SASL.Password}
}

// runConfig is every setting of `whenthen run`, as the config file spells
// it. Flags and environment variables are bound to the same fields.
// Precedence: flags, then environment, then the config file, then the
// defaults of defaultRunConfig.
type runConfig struct {
	Kafka  kafkaConfig `yaml:"kafka"`
	Topics struct {
		Input   string `yaml:"input"`
		Actions string `yaml:"actions"`
		Runs    string `yaml:"runs"`
		DLQ     string `yaml:"dlq"`
	} `yaml:"topics"`
	Redis struct {
		URL              string `yaml:"url"`
		Prefix           string `yaml:"prefix"`
		CAFile           string `yaml:"ca_file"`
		SnapshotEncoding string `yaml:"snapshot_encoding"`
	} `yaml:"redis"`
	Rules   []string      `yaml:"rules"`
	Schema  string        `yaml:"schema"`
	Decoder decoderConfig `yaml:"decoder"`
	Limits  struct {
		StringBytes int `yaml:"string_bytes"`
		ListLen     int `yaml:"list_len"`
		MapEntries  int `yaml:"map_entries"`
		MapDepth    int `yaml:"map_depth"`
	} `yaml:"limits"`
	BatchSize       int   `yaml:"batch_size"`
	StateCacheBytes int64 `yaml:"state_cache_bytes"`
	Metrics         struct {
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`
	Log struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	ReloadInterval  time.Duration `yaml:"reload_interval"`
	TimerInterval   time.Duration `yaml:"timer_interval"`
	TTL             struct {
		Dedup    time.Duration `yaml:"dedup"`
		Snapshot time.Duration `yaml:"snapshot"`
	} `yaml:"ttl"`
}

// decoderConfig is the decoder section of the config file. The offline
// commands read it too (--decoder-config, decoder.go).
type decoderConfig struct {
	Type             string                 `yaml:"type"`
	Tables           map[string]tableConfig `yaml:"tables"`
	UnavailableValue string                 `yaml:"unavailable_value"`
	MaxBytes         int                    `yaml:"max_bytes"`
	MaxDepth         int                    `yaml:"max_depth"`
	MaxElements      int                    `yaml:"max_elements"`
}

// options are the service's decoder options of the section, with the
// record value limits lim.
func (d *decoderConfig) options(lim crm.Limits) service.DecoderOptions {
	o := service.DecoderOptions{Kind: d.Type, UnavailableValue: d.UnavailableValue, MaxBytes: d.MaxBytes,
		MaxDepth: d.MaxDepth, MaxElements: d.MaxElements, Limits: lim}
	if len(d.Tables) > 0 {
		o.Tables = map[string]ingest.TableMapping{}
		for name, t := range d.Tables {
			o.Tables[name] = ingest.TableMapping{Object: t.Object, IDColumn: t.IDColumn, Workspace: t.Workspace,
				WorkspaceColumn: t.WorkspaceColumn, Columns: t.Columns, TimeUnit: t.TimeUnit}
		}
	}
	return o
}

// tableConfig is a Debezium table mapping in the config file.
type tableConfig struct {
	Object          string            `yaml:"object"`
	IDColumn        string            `yaml:"id_column"`
	Workspace       string            `yaml:"workspace"`
	WorkspaceColumn string            `yaml:"workspace_column"`
	Columns         map[string]string `yaml:"columns"`
	TimeUnit        string            `yaml:"time_unit"`
}

func defaultRunConfig() *runConfig {
	c := &runConfig{}
	c.Kafka.Brokers = []string{"localhost:9092"}
	c.Kafka.Group = service.DefaultGroup
	c.Topics.Input = ingest.DefaultTopic
	c.Topics.Actions = "automations.actions"
	c.Topics.Runs = "automations.runs"
	c.Topics.DLQ = "automations.dlq"
	c.Redis.URL = daemon.DefaultRedisURL
	c.Redis.Prefix = "wt:"
	c.Redis.SnapshotEncoding = store.EncodingBinary
	c.Decoder.Type = service.DecoderEnvelope
	c.BatchSize = consumer.DefaultBatchSize
	c.Metrics.Listen = service.DefaultMetricsListen
	c.Log.Format = "json"
	c.Log.Level = "info"
	c.ShutdownTimeout = service.DefaultShutdownTimeout
	c.ReloadInterval = service.DefaultReloadInterval
	c.TimerInterval = service.DefaultTimerInterval
	c.TTL.Dedup = 7 * 24 * time.Hour
	c.TTL.Snapshot = 90 * 24 * time.Hour
	return c
}

// runFlags defines the flags of `whenthen run` on fs, bound to c; config
// receives --config.
func runFlags(fs *flag.FlagSet, c *runConfig, config *string) {
	fs.StringVar(config, "config", "", "YAML config `FILE` (flags and environment override it)")
	fs.Var(&listFlag{p: &c.Kafka.Brokers}, "kafka-brokers", "Kafka bootstrap `BROKERS`, host:port,...")
	fs.StringVar(&c.Kafka.Group, "group", c.Kafka.Group, "consumer group `ID`")
	fs.StringVar(&c.Topics.Input, "input-topic", c.Topics.Input, "input `TOPIC` of events")
	fs.StringVar(&c.Topics.Actions, "actions-topic", c.Topics.Actions, "output `TOPIC` of action records")
	fs.StringVar(&c.Topics.Runs, "runs-topic", c.Topics.Runs, "output `TOPIC` of run-history records")
	fs.StringVar(&c.Topics.DLQ, "dlq-topic", c.Topics.DLQ, "dead-letter `TOPIC` of undecodable events")
	c.Kafka.bindSecurityFlags(fs)
	fs.StringVar(&c.Redis.URL, "redis-url", c.Redis.URL, "Redis `URL`: redis://[USER:PASSWORD@]HOST:PORT/DB, or rediss:// for TLS; a cluster: redis+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT,... (or rediss+cluster://)")
	fs.StringVar(&c.Redis.Prefix, "redis-prefix", c.Redis.Prefix, "`PREFIX` of every Redis key")
	fs.StringVar(&c.Redis.SnapshotEncoding, "snapshot-encoding", c.Redis.SnapshotEncoding, "`FORM` record snapshots are written in: binary, or json during a rolling upgrade from a version that reads only JSON (both forms are read)")
	fs.StringVar(&c.Redis.CAFile, "redis-tls-ca", c.Redis.CAFile, "PEM `FILE` of the CAs that verify a rediss:// server")
	fs.Var(&listFlag{p: &c.Rules}, "rules", "automation `PATHS`, files or directories, comma-separated (repeatable; required)")
	fs.StringVar(&c.Schema, "schema", c.Schema, "schema `FILE` declaring custom fields")
	fs.StringVar(&c.Decoder.Type, "decoder", c.Decoder.Type, "input `DECODER`: envelope or debezium (tables in the config file)")
	fs.IntVar(&c.Decoder.MaxBytes, "decoder-max-bytes", c.Decoder.MaxBytes, "largest input message accepted, in bytes (0: 1 MiB); larger ones are dead-lettered as too_large")
	fs.IntVar(&c.Decoder.MaxDepth, "decoder-max-depth", c.Decoder.MaxDepth, "deepest JSON nesting accepted (0: 32); deeper messages are dead-lettered as too_deep")
	fs.IntVar(&c.Decoder.MaxElements, "decoder-max-elements", c.Decoder.MaxElements, "most entries of one JSON array or object (0: 4096); more are dead-lettered as too_large")
	fs.IntVar(&c.Limits.StringBytes, "limit-string-bytes", c.Limits.StringBytes, "longest record string value in bytes (0: 65536); rules' cost estimates assume it")
	fs.IntVar(&c.Limits.ListLen, "limit-list-len", c.Limits.ListLen, "longest record list (0: 1000); rules' cost estimates assume it")
	fs.IntVar(&c.Limits.MapEntries, "limit-map-entries", c.Limits.MapEntries, "most entries of a record map(string, dyn), all levels (0: 1000)")
	fs.IntVar(&c.Limits.MapDepth, "limit-map-depth", c.Limits.MapDepth, "deepest nesting inside a record map(string, dyn) (0: 16)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "most events of one partition processed as one batch")
	fs.Int64Var(&c.StateCacheBytes, "state-cache-bytes", c.StateCacheBytes, "memory of the per-partition caches of record snapshots (0: the default, 64 MiB; negative: off)")
	fs.StringVar(&c.Metrics.Listen, "metrics-listen", c.Metrics.Listen, "`ADDR` serving /metrics, /healthz and /readyz")
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "log `FORMAT`: json or text")
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "log `LEVEL`: debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "longest drain at shutdown")
	fs.DurationVar(&c.ReloadInterval, "reload-interval", c.ReloadInterval, "how often rule files are checked for changes (negative: never; SIGHUP reloads anyway)")
	fs.DurationVar(&c.TimerInterval, "timer-interval", c.TimerInterval, "how often due date timers fire")
	fs.DurationVar(&c.TTL.Dedup, "dedup-ttl", c.TTL.Dedup, "how long action ids are remembered (at least the input topic's retention)")
	fs.DurationVar(&c.TTL.Snapshot, "snapshot-ttl", c.TTL.Snapshot, "how long a record's last known state is kept")
}

// listFlag is a comma-separated, repeatable list flag. The first Set of a
// flag set replaces the list (a value from the config file or the
// environment); later ones append.
type listFlag struct {
	p   *[]string
	set bool
}

func (l *listFlag) String() string {
	if l == nil || l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *listFlag) Set(v string) error {
	if !l.set {
		*l.p = nil
		l.set = true
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.p = append(*l.p, s)
		}
	}
	return nil
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func runUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: whenthen run [flags]")
	fmt.Fprintln(w, "\nEvery flag can also be set by the environment variable WHENTHEN_<FLAG>, e.g.")
	fmt.Fprintln(w, "WHENTHEN_KAFKA_BROKERS for --kafka-brokers, or in the --config file.")
	fmt.Fprintln(w, "Precedence: flags, environment, config file, defaults. SIGHUP reloads the rules.")
	fmt.Fprintln(w)
	fs.PrintDefaults()
}

// loadRunConfig merges defaults, the config file, the environment and the
// flags. It returns ok false with the exit code when the command is not to
// go on (help, or a usage error already reported).
func loadRunConfig(env *cmdEnv, args []string) (cfg *runConfig, code int, ok bool) {
	// First pass: find --config and report bad flags and help.
	var configPath string
	first := flag.NewFlagSet("run", flag.ContinueOnError)
	runFlags(first, defaultRunConfig(), &configPath)
	first.Usage = func() { runUsage(env.stderr, first) }
	pos, code, ok := parseFlags(first, env, args)
	if !ok {
		return nil, code, false
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "whenthen run: unexpected arguments %q (rule paths go in --rules)\n", pos)
		return nil, 2, false
	}
	set := map[string]bool{}
	first.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["config"] {
		configPath = env.getenv(envName("config"))
	}

	cfg = defaultRunConfig()
	if configPath != "" {
		if err := readConfigFile(configPath, cfg); err != nil {
			fmt.Fprintf(env.stderr, "whenthen run: %v\n", err)
			return nil, 2, false
		}
	}
	// The environment, for flags not given on the command line.
	var ignored string
	envFS := flag.NewFlagSet("run", flag.ContinueOnError)
	runFlags(envFS, cfg, &ignored)
	var envErrs []string
	envFS.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || set[f.Name] {
			return
		}
		if v, found := lookupEnv(env, envName(f.Name)); found {
			if err := f.Value.Set(v); err != nil {
				envErrs = append(envErrs, fmt.Sprintf("%s: %v", envName(f.Name), err))
			}
		}
	})
	if len(envErrs) > 0 {
		for _, e := range envErrs {
			fmt.Fprintf(env.stderr, "whenthen run: invalid environment variable %s\n", e)
		}
		return nil, 2, false
	}
	// The flags, last.
	cli := flag.NewFlagSet("run", flag.ContinueOnError)
	runFlags(cli, cfg, &ignored)
	if _, code, ok := parseFlags(cli, env, args); !ok {
		return nil, code, false
	}
	return cfg, 0, true
}

// lookupEnv reads an environment variable; an empty value counts as unset.
func lookupEnv(env *cmdEnv, name string) (string, bool) {
	v := env.getenv(name)
	return v, v != ""
}

// readConfigFile decodes a YAML config file over cfg; unknown keys are an
// error.
func readConfigFile(path string, cfg *runConfig) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// options turns the merged settings into service options.
func (c *runConfig) options(env *cmdEnv) service.Options {
	o := service.Options{
		Rules:            c.Rules,
		Schema:           c.Schema,
		BatchSize:        c.BatchSize,
		StateCacheBytes:  c.StateCacheBytes,
		MetricsListen:    c.Metrics.Listen,
		LogFormat:        c.Log.Format,
		LogLevel:         c.Log.Level,
		LogOutput:        env.stderr,
		ShutdownTimeout:  c.ShutdownTimeout,
		ReloadInterval:   c.ReloadInterval,
		TimerInterval:    c.TimerInterval,
		DedupTTL:         c.TTL.Dedup,
		SnapshotTTL:      c.TTL.Snapshot,
		SnapshotEncoding: c.Redis.SnapshotEncoding,
	}
	k := &o.Kafka
	k.Brokers = c.Kafka.Brokers
	k.Group = c.Kafka.Group
	k.InputTopic, k.ActionsTopic, k.RunsTopic, k.DLQTopic = c.Topics.Input, c.Topics.Actions, c.Topics.Runs, c.Topics.DLQ
	k.TLS = c.Kafka.tlsOptions()
	k.SASL = c.Kafka.saslOptions()
	o.Redis = daemon.RedisOptions{URL: c.Redis.URL, Prefix: c.Redis.Prefix, CAFile: c.Redis.CAFile}
	o.Decoder = c.Decoder.options(crm.Limits{MaxStringBytes: c.Limits.StringBytes, MaxListLen: c.Limits.ListLen,
		MaxMapEntries: c.Limits.MapEntries, MaxDepth: c.Limits.MapDepth})
	return o
}

// validate checks what the service options do not: values whose checks
// need the command line's vocabulary.
func (c *runConfig) validate() error {
	var errs []error
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New("no rules: give --rules PATH (or rules: in the config file)"))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, fmt.Errorf("--batch-size %d: want a positive number", c.BatchSize))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %v: want a positive duration", c.ShutdownTimeout))
	}
	if c.TimerInterval <= 0 {
		errs = append(errs, fmt.Errorf("--timer-interval %v: want a positive duration", c.TimerInterval))
	}
	if c.ReloadInterval == 0 {
		errs = append(errs, errors.New("--reload-interval 0: want a positive duration, or a negative one to turn polling off"))
	}
	if c.TTL.Dedup <= 0 || c.TTL.Snapshot <= 0 {
		errs = append(errs, errors.New("--dedup-ttl and --snapshot-ttl: want positive durations"))
	}
	if e := c.Redis.SnapshotEncoding; e != store.EncodingBinary && e != store.EncodingJSON {
		errs = append(errs, fmt.Errorf("--snapshot-encoding %q: want %s or %s", e, store.EncodingBinary, store.EncodingJSON))
	}
	return errors.Join(errs...)
}

func runRun(ctx context.Context, env *cmdEnv, args []string) int {
	cfg, code, ok := loadRunConfig(env, args)
	if !ok {
		return code
	}
	opts := cfg.options(env)
	if err := errors.Join(cfg.validate(), opts.Validate()); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.stderr, "whenthen run: %s\n", line)
		}
		return 2
	}
	svc, err := service.New(opts)
	if err != nil {
		var list rules.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(env.stderr, e.Error())
			}
			fmt.Fprintf(env.stderr, "whenthen run: the rules have %d error(s)\n", len(list))
			return 1
		}
		fmt.Fprintf(env.stderr, "whenthen run: %v\n", err)
		return 1
	}
	defer svc.Close()

	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(env.stderr, "whenthen run: %v\n", err)
				return 1
			}
			return 0
		case <-env.reload:
			// Errors are logged and counted by the service; the old rules stay.
			_ = svc.Reload()
		}
	}
}
