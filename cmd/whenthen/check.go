package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/whenthen/whenthen/rules"
)

func init() {
	register(&command{name: "check", summary: "load and type-check automation files; exit 1 on any error", run: runCheck})
}

type checkError struct {
	File         string `json:"file"`
	Line         int    `json:"line"`
	Col          int    `json:"col"`
	AutomationID string `json:"automation,omitempty"`
	Message      string `json:"message"`
}

type checkReport struct {
	Valid   bool           `json:"valid"`
	Summary *rules.Summary `json:"summary,omitempty"`
	Errors  []checkError   `json:"errors"`
}

func runCheck(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	schemaPath := fs.String("schema", "", "schema `FILE` declaring custom fields")
	format := fs.String("format", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen check [--schema FILE] [--format text|json] PATH...")
		fs.PrintDefaults()
	}
	paths, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(env.stderr, "whenthen check: unknown --format %q (want text or json)\n", *format)
		return 2
	}
	if len(paths) == 0 {
		fs.Usage()
		return 2
	}
	set, err := loadRules(*schemaPath, paths)
	rep := checkReport{Errors: []checkError{}}
	if err != nil {
		var list rules.ErrorList
		var one *rules.Error
		switch {
		case errors.As(err, &list):
			for _, e := range list {
				rep.Errors = append(rep.Errors, checkError{e.File, e.Line, e.Col, e.AutomationID, e.Msg})
			}
		case errors.As(err, &one):
			rep.Errors = append(rep.Errors, checkError{one.File, one.Line, one.Col, one.AutomationID, one.Msg})
		default:
			rep.Errors = append(rep.Errors, checkError{Message: err.Error()})
		}
	} else {
		sum := set.Summary()
		rep.Valid, rep.Summary = true, &sum
	}
	if *format == "json" {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(env.stdout, string(out))
	} else if rep.Valid {
		fmt.Fprintf(env.stdout, "ok: %s\n", rep.Summary)
	} else {
		if list, ok := err.(rules.ErrorList); ok {
			for _, e := range list {
				fmt.Fprintln(env.stderr, e.Error())
			}
		} else {
			fmt.Fprintf(env.stderr, "whenthen check: %v\n", err)
		}
		fmt.Fprintf(env.stderr, "%d %s\n", len(rep.Errors), map[bool]string{true: "error", false: "errors"}[len(rep.Errors) == 1])
	}
	if !rep.Valid {
		return 1
	}
	return 0
}

// loadRules loads a schema (the standard one when path is "") and the
// automation files under paths.
func loadRules(schemaPath string, paths []string) (*rules.Set, error) {
	c, err := newCompiler(schemaPath)
	if err != nil {
		return nil, err
	}
	return c.Load(paths...)
}

func newCompiler(schemaPath string) (*rules.Compiler, error) {
	schema := rules.DefaultSchema()
	if schemaPath != "" {
		s, err := rules.LoadSchema(schemaPath)
		if err != nil {
			return nil, err
		}
		schema = s
	}
	return rules.NewCompiler(rules.CompilerOptions{Schema: schema})
}
