package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/authoring"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/redisx"
)

func init() {
	register(&command{name: "eval", summary: "run a JSONL file of events through the rules offline; print actions and runs as JSONL", run: runEval})
}

func runEval(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	var rulePaths stringList
	fs.Var(&rulePaths, "rules", "automation `PATH` (file or directory; repeatable)")
	eventsPath := fs.String("events", "", "JSONL `FILE` of events (docs/events.md), in time order; - for stdin")
	schemaPath := fs.String("schema", "", "schema `FILE` declaring custom fields")
	redisURL := fs.String("redis-url", "", "keep state in this Redis (redis://...); default: in memory")
	prefix := fs.String("redis-prefix", "wt-eval:", "key prefix in --redis-url")
	until := fs.String("until", "", "at the end, fire the timers due up to this RFC 3339 `TIME`")
	failOnDLQ := fs.Bool("fail-on-dead-letter", false, "exit 1 when any input line was dead-lettered (after printing every output)")
	var decoder offlineDecoder
	decoder.flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen eval --rules PATH --events FILE [--schema FILE] [--decoder envelope|debezium] [--decoder-config FILE] [--redis-url URL] [--until TIME] [--fail-on-dead-letter]")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(pos) > 0 || len(rulePaths) == 0 || *eventsPath == "" {
		fs.Usage()
		return 2
	}
	var untilT time.Time
	if *until != "" {
		t, err := time.Parse(time.RFC3339Nano, *until)
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen eval: --until: want an RFC 3339 time, got %q\n", *until)
			return 2
		}
		untilT = t
	}
	compiler, err := newCompiler(*schemaPath)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen eval: %v\n", err)
		return 1
	}
	set, err := compileFiles(compiler, rulePaths)
	if err != nil {
		fmt.Fprintf(env.stderr, "%v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sopts := store.Options{Schema: compiler.Schema(), Limits: compiler.Limits(), Logger: log}
	var st engine.Store
	if *redisURL != "" {
		rdb, err := redisx.NewClient(*redisURL)
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen eval: --redis-url: %v\n", err)
			return 2
		}
		defer rdb.Close()
		if st, err = store.NewRedis(rdb, *prefix, sopts); err != nil {
			fmt.Fprintf(env.stderr, "whenthen eval: %v\n", err)
			return 1
		}
	} else {
		mem, err := store.NewMemory(sopts)
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen eval: in-memory state: %v\n", err)
			return 1
		}
		st = mem
	}
	replay, err := engine.NewReplay(engine.Options{Rules: set, Schema: compiler.Schema(), Store: st, Logger: log})
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen eval: %v\n", err)
		return 1
	}
	unknown := &authoring.UnknownFields{OnFirst: func(n authoring.UnknownFieldNote) {
		fmt.Fprintf(env.stderr, "whenthen eval: warning: %s\n", n)
	}}
	dec, err := decoder.build(compiler.Schema(), compiler.Limits(), unknown.Observe)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen eval: %v\n", err)
		return 2
	}
	in := io.Reader(os.Stdin)
	if *eventsPath != "-" {
		f, err := os.Open(*eventsPath)
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen eval: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	w := bufio.NewWriter(env.stdout)
	defer w.Flush()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line, deadLetters := 0, 0
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if len(trimSpace(raw)) == 0 {
			continue
		}
		unknown.Where = fmt.Sprintf("%s:%d", *eventsPath, line)
		ev, err := dec.Decode(nil, raw)
		if err != nil {
			deadLetters++
			writeJSON(w, map[string]any{"dead_letter": map[string]any{"line": line, "reason": ingest.Reason(err), "detail": ingest.Detail(err)}})
			continue
		}
		outs, err := replay.Event(ctx, ev)
		writeOutputs(w, outs)
		if err != nil {
			w.Flush()
			fmt.Fprintf(env.stderr, "whenthen eval: %s:%d: %v\n", *eventsPath, line, err)
			return 1
		}
	}
	if err := sc.Err(); err != nil {
		w.Flush()
		fmt.Fprintf(env.stderr, "whenthen eval: read %s: %v\n", *eventsPath, err)
		return 1
	}
	if !untilT.IsZero() {
		outs, err := replay.Until(ctx, untilT)
		writeOutputs(w, outs)
		if err != nil {
			w.Flush()
			fmt.Fprintf(env.stderr, "whenthen eval: --until: %v\n", err)
			return 1
		}
	}
	if *failOnDLQ && deadLetters > 0 {
		w.Flush()
		fmt.Fprintf(env.stderr, "whenthen eval: %s dead-lettered (--fail-on-dead-letter)\n", plural(deadLetters, "line"))
		return 1
	}
	return 0
}

// writeOutputs prints each run after the actions it produced.
func writeOutputs(w io.Writer, outs []*engine.Output) {
	for _, out := range outs {
		byID := make(map[string]*actions.Action, len(out.Actions))
		for i := range out.Actions {
			byID[out.Actions[i].ActionID] = &out.Actions[i]
		}
		for _, r := range out.Runs {
			for _, id := range r.ActionIDs {
				if a := byID[id]; a != nil {
					fmt.Fprintf(w, "{\"action\":%s}\n", a.AppendJSON(nil))
				}
			}
			fmt.Fprintf(w, "{\"run\":%s}\n", r.AppendJSON(nil))
		}
	}
}

func writeJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%s\n", b)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
