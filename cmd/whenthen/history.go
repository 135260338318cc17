package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/history"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/internal/daemon"
	"github.com/whenthen/whenthen/rules"
)

func init() {
	register(&command{name: "history", summary: "the run history: store runs, serve the API and the page; runs, run and token are its clients", run: runHistory})
}

// historyConfig is every setting of `whenthen history`, as the config
// file spells it; flags and environment variables are bound to the same
// fields (precedence: flags, environment, file, defaults).
type historyConfig struct {
	Kafka  kafkaConfig `yaml:"kafka"`
	Topics struct {
		Runs     string `yaml:"runs"`
		Actions  string `yaml:"actions"`
		Outcomes string `yaml:"outcomes"`
		DLQ      string `yaml:"dlq"`
	} `yaml:"topics"`
	Redis struct {
		URL    string `yaml:"url"`
		Prefix string `yaml:"prefix"`
		CAFile string `yaml:"ca_file"`
	} `yaml:"redis"`
	Rules   []string `yaml:"rules"`
	Schema  string   `yaml:"schema"`
	History struct {
		DB                string        `yaml:"db"`
		Listen            string        `yaml:"listen"`
		Retention         time.Duration `yaml:"retention"`
		RetentionInterval time.Duration `yaml:"retention_interval"`
		DeleteBatch       int           `yaml:"delete_batch"`
		Tokens            []auth.Token  `yaml:"tokens"`
		SessionKey        string        `yaml:"session_key"`
	} `yaml:"history"`
	BatchSize int `yaml:"batch_size"`
	Log       struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	ReloadInterval  time.Duration `yaml:"reload_interval"`
}

func defaultHistoryConfig() *historyConfig {
	c := &historyConfig{}
	c.Kafka.Brokers = []string{"localhost:9092"}
	c.Kafka.Group = history.DefaultGroup
	c.Topics.Runs, c.Topics.Actions = actions.DefaultRunsTopic, actions.DefaultActionsTopic
	c.Topics.Outcomes, c.Topics.DLQ = actions.DefaultOutcomesTopic, actions.DefaultDLQTopic
	c.Redis.Prefix = history.DefaultRedisPrefix
	c.History.DB = history.DefaultDB
	c.History.Listen = history.DefaultListen
	c.History.Retention = history.DefaultRetention
	c.History.RetentionInterval = history.DefaultRetentionInterval
	c.BatchSize = history.DefaultBatchSize
	c.Log.Format, c.Log.Level = "json", "info"
	c.ShutdownTimeout = history.DefaultShutdownTimeout
	c.ReloadInterval = history.DefaultReloadInterval
	return c
}

// historyFlags defines the flags of `whenthen history` on fs, bound to c.
func historyFlags(fs *flag.FlagSet, c *historyConfig, config *string) {
	fs.StringVar(config, "config", "", "YAML config `FILE` (flags and environment override it)")
	fs.Var(&listFlag{p: &c.Kafka.Brokers}, "kafka-brokers", "Kafka bootstrap `BROKERS`, host:port,...")
	fs.StringVar(&c.Kafka.Group, "group", c.Kafka.Group, "consumer group `ID`")
	fs.StringVar(&c.Topics.Runs, "runs-topic", c.Topics.Runs, "`TOPIC` of run records")
	fs.StringVar(&c.Topics.Actions, "actions-topic", c.Topics.Actions, "`TOPIC` of action records")
	fs.StringVar(&c.Topics.Outcomes, "outcomes-topic", c.Topics.Outcomes, "`TOPIC` of delivery outcomes")
	fs.StringVar(&c.Topics.DLQ, "dlq-topic", c.Topics.DLQ, "dead-letter `TOPIC` of records that cannot be decoded")
	c.Kafka.bindSecurityFlags(fs)
	fs.StringVar(&c.Redis.URL, "redis-url", c.Redis.URL, "the engine's Redis `URL`, read by the Why not? check: redis://[USER:PASSWORD@]HOST:PORT/DB, or rediss://; a cluster: redis+cluster://HOST:PORT,HOST:PORT,... (or rediss+cluster://) (default: the check is unavailable)")
	fs.StringVar(&c.Redis.Prefix, "redis-prefix", c.Redis.Prefix, "the engine's key `PREFIX` in Redis")
	fs.StringVar(&c.Redis.CAFile, "redis-tls-ca", c.Redis.CAFile, "PEM `FILE` of the CAs that verify a rediss:// server")
	fs.Var(&listFlag{p: &c.Rules}, "rules", "automation `PATHS` the engine runs, comma-separated (repeatable): the overview lists them, the check evaluates them")
	fs.StringVar(&c.Schema, "schema", c.Schema, "schema `FILE` declaring custom fields")
	fs.StringVar(&c.History.DB, "history-db", c.History.DB, "the history database: postgres://USER@HOST:PORT/DB or sqlite:PATH")
	fs.StringVar(&c.History.Listen, "history-listen", c.History.Listen, "`ADDR` serving the page, /api/v1, /metrics, /healthz and /readyz")
	fs.DurationVar(&c.History.Retention, "history-retention", c.History.Retention, "how long runs, actions and outcomes are kept")
	fs.DurationVar(&c.History.RetentionInterval, "history-retention-interval", c.History.RetentionInterval, "how often older history is deleted (negative: never)")
	fs.Var(&tokenFlag{p: &c.History.Tokens}, "history-token", "a token that may read the history, `NAME:SHA256:WS1,WS2` (\"*\" for every workspace; repeatable)")
	fs.StringVar(&c.History.SessionKey, "history-session-key", c.History.SessionKey, "hex `KEY` (32+ bytes) of the page's sessions (default: random, a restart signs everyone out; prefer "+envPrefix+"HISTORY_SESSION_KEY)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "most records of one partition written in one transaction")
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "log `FORMAT`: json or text")
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "log `LEVEL`: debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "longest drain at shutdown")
	fs.DurationVar(&c.ReloadInterval, "reload-interval", c.ReloadInterval, "how often rule files are checked for changes (negative: never; SIGHUP reloads anyway)")
}

// tokenFlag is a repeatable --history-token NAME:SHA256:WS1,WS2. The
// first Set replaces the tokens of the config file or environment.
type tokenFlag struct {
	p   *[]auth.Token
	set bool
}

func (f *tokenFlag) String() string {
	if f == nil || f.p == nil {
		return ""
	}
	var names []string
	for _, t := range *f.p {
		names = append(names, t.Name)
	}
	return strings.Join(names, ",")
}

func (f *tokenFlag) Set(v string) error {
	if !f.set {
		*f.p = nil
		f.set = true
	}
	for _, one := range strings.Split(v, ";") {
		if one = strings.TrimSpace(one); one == "" {
			continue
		}
		parts := strings.SplitN(one, ":", 3)
		if len(parts) != 3 {
			return errors.New("want NAME:SHA256:WORKSPACES")
		}
		*f.p = append(*f.p, auth.Token{Name: parts[0], SHA256: parts[1], Workspaces: strings.Split(parts[2], ",")})
	}
	return nil
}

func historyUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: whenthen history [flags]            the service (docs/history.md)")
	fmt.Fprintln(w, "       whenthen history runs --workspace W [--automation ID] [--since 24h] [--outcome O] [--format text|json]")
	fmt.Fprintln(w, "       whenthen history run RUN_ID --workspace W [--format text|json]")
	fmt.Fprintln(w, "       whenthen history token [--name NAME] [--workspaces W1,W2]")
	fmt.Fprintln(w, "\nEvery flag of the service can also be set by WHENTHEN_<FLAG> (WHENTHEN_HISTORY_DB for")
	fmt.Fprintln(w, "--history-db) or in the --config file. Precedence: flags, environment, config file, defaults.")
	fmt.Fprintln(w)
	fs.PrintDefaults()
}

func runHistory(ctx context.Context, env *cmdEnv, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "runs":
			return runHistoryRuns(ctx, env, args[1:])
		case "run":
			return runHistoryRun(ctx, env, args[1:])
		case "token":
			return runHistoryToken(env, args[1:])
		}
	}
	cfg, code, ok := loadConfig(env, args, "history", defaultHistoryConfig, historyFlags, historyUsage)
	if !ok {
		return code
	}
	opts, err := cfg.options(env)
	if err == nil {
		err = opts.Validate()
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.stderr, "whenthen history: %s\n", line)
		}
		return 2
	}
	svc, err := history.New(opts)
	if err != nil {
		var list rules.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(env.stderr, e.Error())
			}
			fmt.Fprintf(env.stderr, "whenthen history: the rules have %d error(s)\n", len(list))
			return 1
		}
		fmt.Fprintf(env.stderr, "whenthen history: %v\n", err)
		return 1
	}
	defer svc.Close()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(env.stderr, "whenthen history: %v\n", err)
				return 1
			}
			return 0
		case <-env.reload:
			_ = svc.Reload() // logged and counted by the service
		}
	}
}

// options turns the merged settings into service options.
func (c *historyConfig) options(env *cmdEnv) (history.Options, error) {
	o := history.Options{
		OutcomesTopic: c.Topics.Outcomes, DB: c.History.DB, Retention: c.History.Retention,
		RetentionInterval: c.History.RetentionInterval, DeleteBatch: c.History.DeleteBatch,
		Rules: c.Rules, Schema: c.Schema, ReloadInterval: c.ReloadInterval, Listen: c.History.Listen,
		Tokens: c.History.Tokens, BatchSize: c.BatchSize, LogFormat: c.Log.Format, LogLevel: c.Log.Level,
		LogOutput: env.stderr, ShutdownTimeout: c.ShutdownTimeout,
	}
	k := &o.Kafka
	k.Brokers, k.Group = c.Kafka.Brokers, c.Kafka.Group
	k.RunsTopic, k.ActionsTopic, k.DLQTopic = c.Topics.Runs, c.Topics.Actions, c.Topics.DLQ
	k.TLS = c.Kafka.tlsOptions()
	k.SASL = c.Kafka.saslOptions()
	o.Redis = daemon.RedisOptions{URL: c.Redis.URL, Prefix: c.Redis.Prefix, CAFile: c.Redis.CAFile}
	if c.History.SessionKey != "" {
		key, err := hex.DecodeString(c.History.SessionKey)
		if err != nil || len(key) < 32 {
			return o, errors.New("--history-session-key: want at least 64 hex digits (32 bytes)")
		}
		o.SessionKey = key
	}
	if c.ShutdownTimeout <= 0 || c.BatchSize <= 0 {
		return o, errors.New("--shutdown-timeout and --batch-size: want positive values")
	}
	return o, nil
}

// loadConfig merges defaults, the config file, the environment and the
// flags of command name, as `whenthen run` does: a first pass finds
// --config and reports bad flags and help; the file is decoded over the
// defaults (unknown keys are an error); each flag not on the command
// line takes its environment variable; the flags come last. It returns
// ok false with the exit code when the command is not to go on.
func loadConfig[C any](env *cmdEnv, args []string, name string, defaults func() *C,
	flags func(*flag.FlagSet, *C, *string), usage func(io.Writer, *flag.FlagSet)) (cfg *C, code int, ok bool) {
	var configPath string
	first := flag.NewFlagSet(name, flag.ContinueOnError)
	flags(first, defaults(), &configPath)
	first.Usage = func() { usage(env.stderr, first) }
	pos, code, ok := parseFlags(first, env, args)
	if !ok {
		return nil, code, false
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "whenthen %s: unexpected arguments %q\n", name, pos)
		return nil, 2, false
	}
	set := map[string]bool{}
	first.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["config"] {
		configPath = env.getenv(envName("config"))
	}
	cfg = defaults()
	if configPath != "" {
		if err := decodeConfigFile(configPath, cfg); err != nil {
			fmt.Fprintf(env.stderr, "whenthen %s: %v\n", name, err)
			return nil, 2, false
		}
	}
	var ignored string
	envFS := flag.NewFlagSet(name, flag.ContinueOnError)
	flags(envFS, cfg, &ignored)
	bad := false
	envFS.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || set[f.Name] {
			return
		}
		if v, found := lookupEnv(env, envName(f.Name)); found {
			if err := f.Value.Set(v); err != nil {
				fmt.Fprintf(env.stderr, "whenthen %s: invalid environment variable %s: %v\n", name, envName(f.Name), err)
				bad = true
			}
		}
	})
	if bad {
		return nil, 2, false
	}
	cli := flag.NewFlagSet(name, flag.ContinueOnError)
	flags(cli, cfg, &ignored)
	if _, code, ok := parseFlags(cli, env, args); !ok {
		return nil, code, false
	}
	return cfg, 0, true
}

func runHistoryToken(env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("history token", flag.ContinueOnError)
	name := fs.String("name", "history-reader", "the token's `NAME` in the configuration")
	wss := fs.String("workspaces", "*", "comma-separated `WORKSPACES` it may read (\"*\" for all, \"~\" for records without a workspace)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen history token [--name NAME] [--workspaces W1,W2]")
		fmt.Fprintln(env.stderr, "\nPrints a new random token, to give to its reader, and the configuration entry with its")
		fmt.Fprintln(env.stderr, "SHA-256, to give to the service. The service never holds the token itself.")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fs.Usage()
		return 2
	}
	tok, hash := auth.NewToken()
	var quoted []string
	for _, w := range strings.Split(*wss, ",") {
		if w = strings.TrimSpace(w); w != "" {
			quoted = append(quoted, fmt.Sprintf("%q", w))
		}
	}
	fmt.Fprintf(env.stdout, "token:  %s\n", tok)
	fmt.Fprintf(env.stdout, "sha256: %s\n\n", hash)
	fmt.Fprintf(env.stdout, "# the service's config file (history.tokens):\n")
	fmt.Fprintf(env.stdout, "- {name: %s, sha256: %s, workspaces: [%s]}\n", *name, hash, strings.Join(quoted, ", "))
	fmt.Fprintf(env.stdout, "# or the flag: --history-token '%s:%s:%s'\n", *name, hash, strings.Join(strings.Split(*wss, ","), ","))
	return 0
}

// decodeConfigFile decodes a YAML config file over cfg; unknown keys are
// an error.
func decodeConfigFile(path string, cfg any) error {
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
