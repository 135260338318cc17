// Command whenthen is the CRM automation engine: one binary whose
// subcommands check rules, evaluate events offline, run the service, and
// start a local broker or a whole development setup.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand. run returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cmdEnv, args []string) int
}

// cmdEnv is what a command may touch of the process: streams, the
// environment and the reload signal.
type cmdEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	reload         <-chan struct{} // SIGHUP; nil when not wired
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	env := &cmdEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, reload: reload}
	os.Exit(run(ctx, env, os.Args[1:]))
}

// run dispatches to a subcommand.
func run(ctx context.Context, env *cmdEnv, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "whenthen: unknown command %q\n\n", args[0])
		usage(env.stderr)
		return 2
	}
	return c.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: whenthen COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'whenthen COMMAND -h' for a command's flags.")
}

// parseFlags parses flags that may stand before, between or after the
// positional arguments, and returns the positional ones. It reports
// whether the command should go on; code is the exit code when not.
func parseFlags(fs *flag.FlagSet, env *cmdEnv, args []string) (pos []string, code int, ok bool) {
	fs.SetOutput(env.stderr)
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		rest := fs.Args()
		i := 0
		for i < len(rest) && !strings.HasPrefix(rest[i], "-") {
			pos = append(pos, rest[i])
			i++
		}
		if i == len(rest) {
			return pos, 0, true
		}
		if rest[i] == "--" {
			return append(pos, rest[i+1:]...), 0, true
		}
		args = rest[i:]
	}
}
