package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"

	"github.com/whenthen/whenthen/authoring"
	"github.com/whenthen/whenthen/rules"
)

func init() {
	register(&command{name: "test", summary: "run scenario tests of automations in simulated time; report failures and coverage", run: runTest})
}

func runTest(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	runRE := fs.String("run", "", "run only the tests whose name matches this `REGEX`")
	junit := fs.String("junit", "", "also write the results as JUnit XML to `FILE`")
	verbose := fs.Bool("v", false, "list passing tests too")
	minCov := fs.Float64("min-coverage", 0, "fail unless at least this `PERCENT` of the enabled automations of each rule set ran")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen test [--run REGEX] [--junit FILE] [--min-coverage PERCENT] [-v] FILE|DIR...")
		fs.PrintDefaults()
	}
	paths, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		fs.Usage()
		return 2
	}
	var opts authoring.TestOptions
	if *runRE != "" {
		re, err := regexp.Compile(*runRE)
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen test: --run: %v\n", err)
			return 2
		}
		opts.Run = re
	}
	files, err := rules.Expand(paths)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen test: %v\n", err)
		return 1
	}
	rep := authoring.RunTests(ctx, files, opts)
	rep.WriteText(env.stdout, *verbose)
	for _, n := range rep.UnknownFields {
		fmt.Fprintf(env.stderr, "whenthen test: warning: %s\n", n)
	}
	code = 0
	if !rep.OK() {
		code = 1
	}
	for _, c := range rep.Coverage {
		ran, total := c.Exercised()
		if total > 0 && 100*float64(ran)/float64(total) < *minCov {
			fmt.Fprintf(env.stdout, "coverage of %v: %d/%d automations exercised is below --min-coverage %g%%\n", c.Rules, ran, total, *minCov)
			code = 1
		}
	}
	if *junit != "" {
		f, err := os.Create(*junit)
		if err == nil {
			err = rep.WriteJUnit(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "whenthen test: --junit: %v\n", err)
			return 1
		}
	}
	return code
}
