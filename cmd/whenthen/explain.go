package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/whenthen/whenthen/authoring"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/redisx"
)

func init() {
	register(&command{name: "explain", summary: "explain what one event does to each automation: trigger, clause values, outcome", run: runExplain})
}

func runExplain(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	var rulePaths stringList
	fs.Var(&rulePaths, "rules", "automation `PATH` (file or directory; repeatable)")
	eventPath := fs.String("event", "", "`FILE` holding one JSON event (docs/events.md); - for stdin")
	automation := fs.String("automation", "", "explain only the automation with this `ID`")
	schemaPath := fs.String("schema", "", "schema `FILE` declaring custom fields")
	format := fs.String("format", "text", "output format: text or json")
	redisURL := fs.String("redis-url", "", "explain against the live state in this Redis (redis://...), read only; default: fresh in-memory state")
	prefix := fs.String("redis-prefix", "", "key prefix of the live state in --redis-url (default the engine's, wt:)")
	var decoder offlineDecoder
	decoder.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen explain --rules PATH --event FILE [--automation ID] [--schema FILE] [--decoder envelope|debezium] [--decoder-config FILE] [--format text|json] [--redis-url URL]")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(pos) > 0 || len(rulePaths) == 0 || *eventPath == "" {
		fs.Usage()
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(env.stderr, "whenthen explain: unknown --format %q (want text or json)\n", *format)
		return 2
	}
	compiler, err := newCompiler(*schemaPath)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen explain: %v\n", err)
		return 1
	}
	set, err := compileFiles(compiler, rulePaths)
	if err != nil {
		fmt.Fprintf(env.stderr, "%v\n", err)
		return 1
	}
	var raw []byte
	if *eventPath == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(*eventPath)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen explain: %v\n", err)
		return 1
	}
	unknown := &authoring.UnknownFields{Where: *eventPath, OnFirst: func(n authoring.UnknownFieldNote) {
		fmt.Fprintf(env.stderr, "whenthen explain: warning: %s\n", n)
	}}
	dec, err := decoder.build(compiler.Schema(), compiler.Limits(), unknown.Observe)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen explain: %v\n", err)
		return 2
	}
	ev, err := dec.Decode(nil, raw)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen explain: %s: not a valid event: %s: %s\n", *eventPath, ingest.Reason(err), ingest.Detail(err))
		return 1
	}
	opts := authoring.ExplainOptions{Compiler: compiler, Set: set, Automation: *automation}
	if *redisURL != "" {
		rdb, err := redisx.NewClient(*redisURL)
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen explain: --redis-url: %v\n", err)
			return 2
		}
		defer rdb.Close()
		live, err := store.NewRedis(rdb, *prefix, store.Options{Schema: compiler.Schema(), Limits: compiler.Limits()})
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen explain: %v\n", err)
			return 1
		}
		opts.Live = live
	}
	x, err := authoring.Explain(ctx, opts, ev)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen explain: %v\n", err)
		return 1
	}
	if *format == "json" {
		return printReportJSON(env, x)
	}
	x.WriteText(env.stdout)
	return 0
}

// printReportJSON writes v as indented JSON, without HTML escaping (conditions
// hold && and >).
func printReportJSON(env *cmdEnv, v any) int {
	enc := json.NewEncoder(env.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(env.stderr, "whenthen: %v\n", err)
		return 1
	}
	return 0
}
