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

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/internal/yamlfile"
)

func init() {
	register(&command{name: "deliver", summary: "carry actions out: webhooks, email and Slack briefs; one outcome per action", run: runDeliver})
}

// deliverConfig is every setting of `whenthen deliver` but the delivery
// config itself (destinations, brief, fields: package delivery reads
// those from the same file, and again on every reload). The connection
// settings are spelled as for `whenthen run`.
type deliverConfig struct {
	Kafka  kafkaConfig `yaml:"kafka"`
	Topics struct {
		Actions  string `yaml:"actions"`
		Outcomes string `yaml:"outcomes"`
		DLQ      string `yaml:"dlq"`
	} `yaml:"topics"`
	Redis struct {
		URL    string `yaml:"url"`
		Prefix string `yaml:"prefix"`
		CAFile string `yaml:"ca_file"`
	} `yaml:"redis"`
	Schema    string `yaml:"schema"`
	BatchSize int    `yaml:"batch_size"`
	Metrics   struct {
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`
	Log struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	ReloadInterval  time.Duration `yaml:"reload_interval"`
	PollInterval    time.Duration `yaml:"poll_interval"`
	TTL             struct {
		Dedup time.Duration `yaml:"dedup"`
	} `yaml:"ttl"`

	// Read by package delivery.
	Destinations yaml.Node `yaml:"destinations"`
	Brief        yaml.Node `yaml:"brief"`
	Fields       yaml.Node `yaml:"fields"`
}

// deliverConfigKeys are the config file's keys this command reads; the
// others are the delivery config's.
var deliverConfigKeys = []string{"kafka", "topics", "redis", "schema", "batch_size", "metrics", "log",
	"shutdown_timeout", "reload_interval", "poll_interval", "ttl"}

func defaultDeliverConfig() *deliverConfig {
	c := &deliverConfig{}
	c.Kafka.Brokers = []string{"localhost:9092"}
	c.Kafka.Group = delivery.DefaultGroup
	c.Topics.Actions = actions.DefaultActionsTopic
	c.Topics.Outcomes = actions.DefaultOutcomesTopic
	c.Topics.DLQ = actions.DefaultDLQTopic
	c.Redis.URL = daemon.DefaultRedisURL
	c.Redis.Prefix = "wt:"
	c.BatchSize = delivery.DefaultBatchSize
	c.Metrics.Listen = delivery.DefaultMetricsListen
	c.Log.Format = "json"
	c.Log.Level = "info"
	c.ShutdownTimeout = 30 * time.Second
	c.ReloadInterval = 5 * time.Second
	c.PollInterval = delivery.DefaultPollInterval
	c.TTL.Dedup = delivery.DefaultDedupTTL
	return c
}

func deliverFlags(fs *flag.FlagSet, c *deliverConfig, config *string, check *bool) {
	fs.StringVar(config, "config", "", "YAML config `FILE`: destinations, brief, fields (reloaded on change and SIGHUP), and the settings below")
	fs.BoolVar(check, "check", false, "check the config (secrets and files included) and exit: 0 if valid, 1 if not")
	fs.Var(&listFlag{p: &c.Kafka.Brokers}, "kafka-brokers", "Kafka bootstrap `BROKERS`, host:port,...")
	fs.StringVar(&c.Kafka.Group, "group", c.Kafka.Group, "consumer group `ID` (not the engine's)")
	fs.StringVar(&c.Topics.Actions, "actions-topic", c.Topics.Actions, "input `TOPIC` of action records")
	fs.StringVar(&c.Topics.Outcomes, "outcomes-topic", c.Topics.Outcomes, "output `TOPIC` of delivery outcomes")
	fs.StringVar(&c.Topics.DLQ, "dlq-topic", c.Topics.DLQ, "dead-letter `TOPIC` of failed and unreadable actions")
	c.Kafka.bindSecurityFlags(fs)
	fs.StringVar(&c.Redis.URL, "redis-url", c.Redis.URL, "Redis `URL` (the engine's): redis://[USER:PASSWORD@]HOST:PORT/DB, or rediss://; a cluster: redis+cluster://HOST:PORT,HOST:PORT,... (or rediss+cluster://)")
	fs.StringVar(&c.Redis.Prefix, "redis-prefix", c.Redis.Prefix, "`PREFIX` of every Redis key (the engine's: snapshots are read under it)")
	fs.StringVar(&c.Redis.CAFile, "redis-tls-ca", c.Redis.CAFile, "PEM `FILE` of the CAs that verify a rediss:// server")
	fs.StringVar(&c.Schema, "schema", c.Schema, "the engine's schema `FILE` (record snapshots are read with it)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "most action records of one partition scheduled at once")
	fs.StringVar(&c.Metrics.Listen, "metrics-listen", c.Metrics.Listen, "`ADDR` serving /metrics, /healthz and /readyz")
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "log `FORMAT`: json or text")
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "log `LEVEL`: debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "longest drain at shutdown")
	fs.DurationVar(&c.ReloadInterval, "reload-interval", c.ReloadInterval, "how often the config files are checked for changes (negative: never; SIGHUP reloads anyway)")
	fs.DurationVar(&c.PollInterval, "poll-interval", c.PollInterval, "how often each destination's queue is checked for due deliveries")
	fs.DurationVar(&c.TTL.Dedup, "dedup-ttl", c.TTL.Dedup, "how long final marks are kept (at least the actions topic's retention)")
}

func deliverUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: whenthen deliver --config FILE [flags]")
	fmt.Fprintln(w, "\nConsumes automations.actions with its own consumer group and carries every action out")
	fmt.Fprintln(w, "through the destinations of the config file (docs/delivery.md), writing one outcome per")
	fmt.Fprintln(w, "action and destination to automations.outcomes. Every flag can also be set by the")
	fmt.Fprintln(w, "environment variable WHENTHEN_<FLAG> or in the config file. SIGHUP reloads the destinations.")
	fmt.Fprintln(w)
	fs.PrintDefaults()
}

// loadDeliverConfig merges defaults, the config file, the environment and
// the flags, as loadRunConfig does for `whenthen run`.
func loadDeliverConfig(env *cmdEnv, args []string) (cfg *deliverConfig, path string, check bool, code int, ok bool) {
	var ignoredCheck bool
	first := flag.NewFlagSet("deliver", flag.ContinueOnError)
	deliverFlags(first, defaultDeliverConfig(), &path, &check)
	first.Usage = func() { deliverUsage(env.stderr, first) }
	pos, code, ok := parseFlags(first, env, args)
	if !ok {
		return nil, "", false, code, false
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "whenthen deliver: unexpected arguments %q\n", pos)
		return nil, "", false, 2, false
	}
	set := map[string]bool{}
	first.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["config"] {
		path = env.getenv(envName("config"))
	}
	if path == "" {
		fmt.Fprintln(env.stderr, "whenthen deliver: no config: give --config FILE (or "+envName("config")+") with the destinations")
		return nil, "", false, 2, false
	}
	cfg = defaultDeliverConfig()
	if err := readDeliverFile(path, cfg); err != nil {
		fmt.Fprintf(env.stderr, "whenthen deliver: %v\n", err)
		return nil, "", false, 2, false
	}
	var ignored string
	envFS := flag.NewFlagSet("deliver", flag.ContinueOnError)
	deliverFlags(envFS, cfg, &ignored, &ignoredCheck)
	var envErrs []string
	envFS.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "check" || set[f.Name] {
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
			fmt.Fprintf(env.stderr, "whenthen deliver: invalid environment variable %s\n", e)
		}
		return nil, "", false, 2, false
	}
	cli := flag.NewFlagSet("deliver", flag.ContinueOnError)
	deliverFlags(cli, cfg, &ignored, &ignoredCheck)
	if _, code, ok := parseFlags(cli, env, args); !ok {
		return nil, "", false, code, false
	}
	return cfg, path, check, 0, true
}

// readDeliverFile decodes the config file's settings over cfg; unknown
// keys are an error.
func readDeliverFile(path string, cfg *deliverConfig) error {
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

func (c *deliverConfig) options(env *cmdEnv, path string) delivery.Options {
	o := delivery.Options{
		OutcomesTopic:   c.Topics.Outcomes,
		Schema:          c.Schema,
		ConfigFile:      path,
		ConfigKeys:      deliverConfigKeys,
		Env:             env.getenv,
		BatchSize:       c.BatchSize,
		MetricsListen:   c.Metrics.Listen,
		LogFormat:       c.Log.Format,
		LogLevel:        c.Log.Level,
		LogOutput:       env.stderr,
		ShutdownTimeout: c.ShutdownTimeout,
		ReloadInterval:  c.ReloadInterval,
		PollInterval:    c.PollInterval,
		DedupTTL:        c.TTL.Dedup,
	}
	k := &o.Kafka
	k.Brokers, k.Group = c.Kafka.Brokers, c.Kafka.Group
	k.ActionsTopic, k.DLQTopic = c.Topics.Actions, c.Topics.DLQ
	k.TLS = c.Kafka.tlsOptions()
	k.SASL = c.Kafka.saslOptions()
	o.Redis = daemon.RedisOptions{URL: c.Redis.URL, Prefix: c.Redis.Prefix, CAFile: c.Redis.CAFile}
	return o
}

func (c *deliverConfig) validate() error {
	// The connection settings are checked as every service checks them.
	k := daemon.KafkaOptions{Brokers: c.Kafka.Brokers, Group: c.Kafka.Group, TLS: c.Kafka.tlsOptions(), SASL: c.Kafka.saslOptions()}
	r := daemon.RedisOptions{URL: c.Redis.URL, CAFile: c.Redis.CAFile}
	errs := []error{k.Validate(), r.Validate(), daemon.ValidateLog(c.Log.Format, c.Log.Level)}
	if c.BatchSize <= 0 {
		errs = append(errs, fmt.Errorf("--batch-size %d: want a positive number", c.BatchSize))
	}
	if c.ShutdownTimeout <= 0 || c.PollInterval <= 0 || c.TTL.Dedup <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout, --poll-interval and --dedup-ttl: want positive durations"))
	}
	if c.ReloadInterval == 0 {
		errs = append(errs, errors.New("--reload-interval 0: want a positive duration, or a negative one to turn polling off"))
	}
	return errors.Join(errs...)
}

func runDeliver(ctx context.Context, env *cmdEnv, args []string) int {
	cfg, path, check, code, ok := loadDeliverConfig(env, args)
	if !ok {
		return code
	}
	if err := cfg.validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.stderr, "whenthen deliver: %s\n", line)
		}
		return 2
	}
	if check {
		n, err := delivery.CheckConfig(path, deliverConfigKeys, cfg.Schema, env.getenv)
		if err != nil {
			printDeliverErrors(env, err)
			return 1
		}
		fmt.Fprintf(env.stdout, "ok: %s: %d destination(s)\n", path, n)
		return 0
	}
	svc, err := delivery.New(cfg.options(env, path))
	if err != nil {
		printDeliverErrors(env, err)
		return 1
	}
	defer svc.Close()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(env.stderr, "whenthen deliver: %v\n", err)
				return 1
			}
			return 0
		case <-env.reload:
			// Errors are logged and counted by the service; the old config stays.
			_ = svc.Reload()
		}
	}
}

// printDeliverErrors prints a config's errors one a line, positions first.
func printDeliverErrors(env *cmdEnv, err error) {
	var list yamlfile.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(env.stderr, e.Error())
		}
		fmt.Fprintf(env.stderr, "whenthen deliver: the config has %d error(s)\n", len(list))
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(env.stderr, "whenthen deliver: %s\n", line)
	}
}
