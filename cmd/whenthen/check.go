package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/internal/yamlfile"
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
	var lines []string // the errors as text, one a line
	if err != nil {
		rep.Errors, lines = checkErrors(err)
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
		for _, l := range lines {
			fmt.Fprintln(env.stderr, l)
		}
		fmt.Fprintf(env.stderr, "%d %s\n", len(rep.Errors), map[bool]string{true: "error", false: "errors"}[len(rep.Errors) == 1])
	}
	if !rep.Valid {
		return 1
	}
	return 0
}

// checkErrors reports the positioned errors of an automation or schema
// file, one by one; any other error as one without a position.
func checkErrors(err error) ([]checkError, []string) {
	var (
		out   []checkError
		lines []string
		list  rules.ErrorList
		one   *rules.Error
		flist yamlfile.ErrorList
		fone  *yamlfile.Error
	)
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			out = append(out, checkError{e.File, e.Line, e.Col, e.AutomationID, e.Msg})
			lines = append(lines, e.Error())
		}
	case errors.As(err, &one):
		out, lines = []checkError{{one.File, one.Line, one.Col, one.AutomationID, one.Msg}}, []string{one.Error()}
	case errors.As(err, &flist):
		for _, e := range flist {
			out = append(out, checkError{File: e.File, Line: e.Line, Col: e.Col, Message: e.Msg})
			lines = append(lines, e.Error())
		}
	case errors.As(err, &fone):
		out, lines = []checkError{{File: fone.File, Line: fone.Line, Col: fone.Col, Message: fone.Msg}}, []string{fone.Error()}
	default:
		out, lines = []checkError{{Message: err.Error()}}, []string{"whenthen check: " + err.Error()}
	}
	return out, lines
}

// loadRules loads a schema (the standard one when path is "") and the
// automation files under paths.
func loadRules(schemaPath string, paths []string) (*rules.Set, error) {
	c, err := newCompiler(schemaPath)
	if err != nil {
		return nil, err
	}
	return compileFiles(c, paths)
}

// compileFiles reads the automation files under paths and compiles them.
func compileFiles(c *rules.Compiler, paths []string) (*rules.Set, error) {
	srcs, err := rules.ReadFiles(paths...)
	if err != nil {
		return nil, err
	}
	return c.Compile(srcs)
}

func newCompiler(schemaPath string) (*rules.Compiler, error) {
	schema := crm.DefaultSchema()
	if schemaPath != "" {
		s, err := crm.LoadSchema(schemaPath)
		if err != nil {
			return nil, err
		}
		schema = s
	}
	return rules.NewCompiler(rules.CompilerOptions{Schema: schema})
}
