package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/whenthen/whenthen/authoring"
)

func init() {
	register(&command{name: "backtest", summary: "replay history through new and baseline rules; print the actions added and removed", run: runBacktest})
}

func runBacktest(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	var newPaths, basePaths stringList
	fs.Var(&newPaths, "rules", "the new automation `PATH` (file or directory; repeatable)")
	fs.Var(&basePaths, "baseline", "the baseline automation `PATH` to compare with (repeatable)")
	eventsPath := fs.String("events", "", "JSONL `FILE` of events (docs/events.md), in time order; - for stdin")
	brokers := fs.String("kafka-brokers", "", "read history from Kafka: comma-separated `HOST:PORT` list")
	topic := fs.String("topic", "crm.events", "the events `TOPIC` in Kafka")
	from := fs.String("from", "", "with Kafka: read from the first message at or after this RFC 3339 `TIME`")
	to := fs.String("to", "", "with Kafka: stop before the first message at or after this RFC 3339 `TIME` (default: the end of each partition when the backtest starts)")
	until := fs.String("until", "", "at the end, fire the timers due up to this RFC 3339 `TIME`")
	schemaPath := fs.String("schema", "", "schema `FILE` declaring custom fields (for both rule sets)")
	format := fs.String("format", "text", "output format: text or json")
	examples := fs.Int("examples", 3, "actions shown per automation, added and removed")
	var decoder offlineDecoder
	decoder.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen backtest --rules NEW --baseline OLD (--events FILE | --kafka-brokers HOST:PORT,... --topic T --from TIME [--to TIME]) [--schema FILE] [--decoder envelope|debezium] [--decoder-config FILE] [--format text|json]")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(pos) > 0 || len(newPaths) == 0 || len(basePaths) == 0 || (*eventsPath == "") == (*brokers == "") {
		fs.Usage()
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(env.stderr, "whenthen backtest: unknown --format %q (want text or json)\n", *format)
		return 2
	}
	times := map[string]*time.Time{"from": new(time.Time), "to": new(time.Time), "until": new(time.Time)}
	for name, s := range map[string]string{"from": *from, "to": *to, "until": *until} {
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen backtest: --%s: want an RFC 3339 time, got %q\n", name, s)
			return 2
		}
		*times[name] = t
	}
	if *brokers != "" && times["from"].IsZero() {
		fmt.Fprintln(env.stderr, "whenthen backtest: --from is required with --kafka-brokers")
		return 2
	}
	if *eventsPath != "" && (*from != "" || *to != "") {
		fmt.Fprintln(env.stderr, "whenthen backtest: --from and --to apply to --kafka-brokers only")
		return 2
	}
	compiler, err := newCompiler(*schemaPath)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen backtest: %v\n", err)
		return 1
	}
	baseline, err := compileFiles(compiler, basePaths)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen backtest: baseline rules:\n%v\n", err)
		return 1
	}
	rules, err := compileFiles(compiler, newPaths)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen backtest: new rules:\n%v\n", err)
		return 1
	}
	dec, err := decoder.build(compiler.Schema(), compiler.Limits(), nil)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen backtest: %v\n", err)
		return 2
	}
	var src authoring.Source
	if *eventsPath != "" {
		in := io.Reader(os.Stdin)
		if *eventsPath != "-" {
			f, err := os.Open(*eventsPath)
			if err != nil {
				fmt.Fprintf(env.stderr, "whenthen backtest: %v\n", err)
				return 1
			}
			defer f.Close()
			in = f
		}
		src = authoring.NewLineSource(in, *eventsPath)
	} else {
		ks, err := authoring.NewKafkaSource(ctx, authoring.KafkaOptions{Brokers: strings.Split(*brokers, ","), Topic: *topic,
			From: *times["from"], To: *times["to"]})
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen backtest: %v\n", err)
			return 1
		}
		defer ks.Close()
		src = ks
	}
	rep, err := authoring.Backtest(ctx, authoring.BacktestOptions{Schema: compiler.Schema(), Baseline: baseline, New: rules,
		Decoder: dec, Until: *times["until"], Examples: *examples}, src)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen backtest: %v\n", err)
		return 1
	}
	if *format == "json" {
		return printReportJSON(env, rep)
	}
	rep.WriteText(env.stdout)
	return 0
}
