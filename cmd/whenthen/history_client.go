package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/whenthen/whenthen/history/api"
	"github.com/whenthen/whenthen/history/query"
	"github.com/whenthen/whenthen/history/store"
)

// The clients of the history API: `whenthen history runs` and
// `whenthen history run`.

// historyClient is what both clients take: where the service is, which
// token, which workspace, which format.
type historyClient struct {
	url, token, workspace, format string
}

func (c *historyClient) flags(fs *flag.FlagSet, env *cmdEnv) {
	def := env.getenv(envPrefix + "HISTORY_URL")
	if def == "" {
		def = "http://127.0.0.1:9466"
	}
	fs.StringVar(&c.url, "url", def, "`URL` of the history service (or "+envPrefix+"HISTORY_URL)")
	fs.StringVar(&c.token, "token", "", "history `TOKEN` (default "+envPrefix+"HISTORY_TOKEN)")
	fs.StringVar(&c.workspace, "workspace", "", "`WORKSPACE` to read (\"~\" for records without one; required)")
	fs.StringVar(&c.format, "format", "text", "output `FORMAT`: text or json")
}

func (c *historyClient) check(env *cmdEnv) error {
	if c.token == "" {
		c.token = env.getenv(envPrefix + "HISTORY_TOKEN")
	}
	switch {
	case c.workspace == "":
		return errors.New("--workspace is required")
	case c.token == "":
		return errors.New("no token: give --token or set " + envPrefix + "HISTORY_TOKEN (whenthen history token makes one)")
	case c.format != "text" && c.format != "json":
		return fmt.Errorf("--format %q: want text or json", c.format)
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want http(s)://HOST:PORT", c.url)
	}
	return nil
}

// get fetches path (under /api/v1/workspaces/WS) with params into v, or
// returns the API's error message.
func (c *historyClient) get(ctx context.Context, path string, params url.Values, v any) ([]byte, error) {
	u := strings.TrimRight(c.url, "/") + api.Prefix + "/workspaces/" + url.PathEscape(c.workspace) + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		var e api.Error
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			switch res.StatusCode {
			case http.StatusNotFound:
				return nil, fmt.Errorf("not found (no such run, or the token does not cover workspace %q)", c.workspace)
			case http.StatusUnauthorized:
				return nil, errors.New("the service does not know this token")
			}
			return nil, errors.New(e.Error.Message)
		}
		return nil, fmt.Errorf("%s answered %s", c.url, res.Status)
	}
	return body, json.Unmarshal(body, v)
}

func runHistoryRuns(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("history runs", flag.ContinueOnError)
	var c historyClient
	c.flags(fs, env)
	var f struct{ automation, object, record, outcome, reason, event, since, until string }
	fs.StringVar(&f.automation, "automation", "", "only runs of automation `ID`")
	fs.StringVar(&f.object, "object", "", "only runs on records of `OBJECT`")
	fs.StringVar(&f.record, "record", "", "only runs on record `ID` (with --object)")
	fs.StringVar(&f.outcome, "outcome", "", "only runs with `OUTCOME`: completed, skipped or error")
	fs.StringVar(&f.reason, "reason", "", "only runs with `REASON` (cooldown, duplicate, ...)")
	fs.StringVar(&f.event, "event", "", "only runs of event `ID`")
	fs.StringVar(&f.since, "since", "24h", "runs at or after `TIME`: RFC 3339, or a duration back from now")
	fs.StringVar(&f.until, "until", "", "runs before `TIME`")
	limit := fs.Int("limit", 50, "at most `N` runs (up to 10000; pages are followed)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen history runs --workspace W [--automation ID] [--since 24h] [--outcome O] [--format text|json]")
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
	if err := c.check(env); err != nil {
		fmt.Fprintf(env.stderr, "whenthen history runs: %v\n", err)
		return 2
	}
	if *limit < 1 || *limit > 10000 {
		fmt.Fprintln(env.stderr, "whenthen history runs: --limit: want 1 to 10000")
		return 2
	}
	params := url.Values{}
	for k, v := range map[string]string{"automation": f.automation, "object": f.object, "record": f.record, "outcome": f.outcome,
		"reason": f.reason, "event": f.event, "since": f.since, "until": f.until} {
		if v != "" {
			params.Set(k, v)
		}
	}
	var runs []store.Run
	for len(runs) < *limit {
		params.Set("limit", fmt.Sprint(min(*limit-len(runs), store.MaxLimit)))
		var page store.RunPage
		if _, err := c.get(ctx, "/runs", params, &page); err != nil {
			fmt.Fprintf(env.stderr, "whenthen history runs: %v\n", err)
			return 1
		}
		runs = append(runs, page.Runs...)
		if page.NextCursor == "" {
			break
		}
		params.Set("cursor", page.NextCursor)
	}
	if c.format == "json" {
		if runs == nil {
			runs = []store.Run{}
		}
		return printReportJSON(env, map[string]any{"runs": runs})
	}
	if len(runs) == 0 {
		fmt.Fprintln(env.stdout, "no runs match")
		return 0
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RAN AT (UTC)\tAUTOMATION\tRECORD\tSTATUS\tREASON\tRUN")
	for _, r := range runs {
		rec := r.Object + "/" + r.RecordID
		if r.RecordID == "" {
			rec = "-"
		}
		reason := r.Reason
		if r.Error != "" {
			reason += ": " + oneLine(r.Error, 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.RanAt.UTC().Format("2006-01-02 15:04:05"), r.AutomationID, rec, r.Status, reason, r.RunID)
	}
	tw.Flush()
	return 0
}

func runHistoryRun(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("history run", flag.ContinueOnError)
	var c historyClient
	c.flags(fs, env)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen history run RUN_ID --workspace W [--format text|json]")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	if err := c.check(env); err != nil {
		fmt.Fprintf(env.stderr, "whenthen history run: %v\n", err)
		return 2
	}
	var d store.RunDetail
	body, err := c.get(ctx, "/runs/"+url.PathEscape(pos[0]), nil, &d)
	if err != nil {
		fmt.Fprintf(env.stderr, "whenthen history run: %v\n", err)
		return 1
	}
	if c.format == "json" {
		var v any
		_ = json.Unmarshal(body, &v)
		return printReportJSON(env, v)
	}
	writeRunText(env.stdout, &d)
	return 0
}

// writeRunText prints a run for people.
func writeRunText(w io.Writer, d *store.RunDetail) {
	fmt.Fprintf(w, "run %s of %s in %s\n", d.RunID, d.AutomationID, query.WorkspacePath(d.Workspace))
	fmt.Fprintf(w, "  ran      %s\n", d.RanAt.UTC().Format(time.RFC3339Nano))
	status := d.Status
	if d.Reason != "" {
		status += " (" + d.Reason + ")"
	}
	fmt.Fprintf(w, "  status   %s\n", status)
	if d.Error != "" {
		fmt.Fprintf(w, "  error    %s\n", d.Error)
	}
	if d.RecordID != "" {
		fmt.Fprintf(w, "  record   %s %s\n", d.Object, d.RecordID)
	}
	fmt.Fprintf(w, "  event    %s\n", d.EventID)
	if d.Why != nil {
		fmt.Fprintln(w, "why")
		for _, c := range d.Why.Clauses {
			res := "error: " + c.Error
			if c.Result != nil {
				res = fmt.Sprint(*c.Result)
			}
			fmt.Fprintf(w, "  %-6s %s\n", res, c.Text)
		}
		for _, v := range d.Why.Values {
			fmt.Fprintf(w, "         %s = %s\n", v.Field, v.Value)
		}
	}
	for _, p := range d.Persons {
		fmt.Fprintf(w, "person   %s %s %s\n", p.PersonID, p.Status, p.Reason)
	}
	if d.Context != nil {
		b, _ := json.Marshal(d.Context)
		fmt.Fprintf(w, "context  %s\n", b)
	}
	for _, a := range d.Actions {
		what := a.Type
		switch {
		case a.Missing:
			what = "(action record not stored yet)"
		case a.Brief != nil:
			what = "brief to " + strings.Join(a.Brief.Recipients, ", ")
		case a.Flow != nil:
			what = "flow " + a.Flow.ID + " enrolls " + a.Flow.PersonID
		}
		fmt.Fprintf(w, "action   %s %s: %s\n", a.ActionID, a.Delivery, what)
		for _, o := range a.Outcomes {
			fmt.Fprintf(w, "  %s %s after %d attempt(s)", o.Destination, o.Status, o.Attempts)
			if o.Error != "" {
				fmt.Fprintf(w, ": %s", oneLine(o.Error, 120))
			}
			fmt.Fprintln(w)
			for _, at := range o.AttemptLog {
				e := "ok"
				if at.Error != "" {
					e = oneLine(at.Error, 120)
				}
				fmt.Fprintf(w, "    %s %dms %s\n", at.At.UTC().Format(time.RFC3339), at.DurationMS, e)
			}
		}
	}
}

// oneLine cuts s to n bytes on one line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}
