// Package query is the one query layer the history's JSON API (package
// history/api) and its page (package history/web) share: it joins the
// live rule set with what the store knows, parses the parameters both
// take, and runs the Why not? check. Handlers stay thin over it.
package query

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/history/check"
	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/rules"
)

// Windows of the automation counts.
const (
	DefaultWindow = 24 * time.Hour
	MinWindow     = time.Hour
	MaxWindow     = 30 * 24 * time.Hour
)

// Q answers the history's questions. It is safe for concurrent use.
type Q struct {
	store   *store.Store
	rules   check.Rules
	checker *check.Checker
	clock   func() time.Time
}

// New returns the query layer over st, the live rules and checker
// (which may be unavailable: see check.New). clock defaults to time.Now.
func New(st *store.Store, rules check.Rules, checker *check.Checker, clock func() time.Time) *Q {
	if clock == nil {
		clock = time.Now
	}
	return &Q{store: st, rules: rules, checker: checker, clock: clock}
}

// Now is the query layer's clock.
func (q *Q) Now() time.Time { return q.clock() }

// CheckAvailable reports whether the Why not? check can run.
func (q *Q) CheckAvailable() bool { return q.checker.Available() }

// WorkspaceFromPath is the workspace a URL names: auth.NoWorkspace is the
// workspace of records that carry none.
func WorkspaceFromPath(s string) string {
	if s == auth.NoWorkspace {
		return ""
	}
	return s
}

// WorkspacePath is the name of workspace ws in URLs.
func WorkspacePath(ws string) string {
	if ws == "" {
		return auth.NoWorkspace
	}
	return ws
}

// Automation is one automation of a workspace: from the live rules, with
// its runs in a window as the store counts them. Automations that have
// runs but are no longer in the rules are listed too, with Live false.
type Automation struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Workspace string `json:"workspace"`
	// Live is true for an automation of the live rule set.
	Live      bool   `json:"live"`
	Enabled   bool   `json:"enabled"`
	Trigger   string `json:"trigger,omitempty"`
	Object    string `json:"object,omitempty"`
	Condition string `json:"condition,omitempty"`
	Fire      string `json:"fire,omitempty"`
	Action    string `json:"action,omitempty"`
	Cooldown  string `json:"cooldown,omitempty"`
	Source    string `json:"source,omitempty"`
	// Window is the span the counts cover, ending now.
	Window    string              `json:"window"`
	Runs      int64               `json:"runs"`
	ByOutcome map[string]int64    `json:"by_outcome"`
	ByReason  []store.ReasonCount `json:"by_reason"`
	LastRun   *store.LastRun      `json:"last_run"`
	LastError *store.LastRun      `json:"last_error"`
	// Hourly are the runs per hour and outcome in the window, oldest
	// first, when asked for.
	Hourly []store.Bucket `json:"hourly,omitempty"`
}

// ErrNotFound is returned for an automation neither in the live rules
// nor in the history of the workspace.
var ErrNotFound = errors.New("not found")

// Automations lists the automations of workspace ws, sorted by id, with
// their counts over window (ending now), and their hourly runs when
// hourly is set.
func (q *Q) Automations(ctx context.Context, ws string, window time.Duration, hourly bool) ([]Automation, error) {
	now := q.clock()
	stats, err := q.store.Automations(ctx, ws, "", now.Add(-window), now)
	if err != nil {
		return nil, err
	}
	var out []Automation
	seen := map[string]bool{}
	if _, set := q.rules(); set != nil {
		for _, a := range set.Automations {
			if a.Workspace != ws {
				continue
			}
			seen[a.ID] = true
			out = append(out, fromRule(a))
		}
	}
	for id := range stats {
		if !seen[id] {
			out = append(out, Automation{ID: id, Workspace: ws})
		}
	}
	slices.SortFunc(out, func(a, b Automation) int { return strings.Compare(a.ID, b.ID) })
	ids := make([]string, len(out))
	for i := range out {
		a := &out[i]
		ids[i] = a.ID
		a.Window = WindowText(window)
		a.ByOutcome, a.ByReason = map[string]int64{}, []store.ReasonCount{}
		if st := stats[a.ID]; st != nil {
			a.Runs, a.ByOutcome, a.ByReason, a.LastRun, a.LastError = st.Total, st.ByOutcome, st.ByReason, st.LastRun, st.LastError
		}
	}
	if hourly && len(ids) > 0 {
		h, err := q.store.Hourly(ctx, ws, ids, now.Add(-window), now)
		if err != nil {
			return nil, err
		}
		for i := range out {
			out[i].Hourly = h[out[i].ID]
		}
	}
	return out, nil
}

// Automation returns one automation of ws with its counts and hourly
// runs over window, or ErrNotFound.
func (q *Q) Automation(ctx context.Context, ws, id string, window time.Duration) (*Automation, error) {
	var a *Automation
	if _, set := q.rules(); set != nil {
		if r, ok := set.Automation(id); ok && r.Workspace == ws {
			v := fromRule(r)
			a = &v
		}
	}
	now := q.clock()
	stats, err := q.store.Automations(ctx, ws, id, now.Add(-window), now)
	if err != nil {
		return nil, err
	}
	st := stats[id]
	if a == nil && st == nil {
		return nil, ErrNotFound
	}
	if a == nil {
		a = &Automation{ID: id, Workspace: ws}
	}
	a.Window, a.ByOutcome, a.ByReason = WindowText(window), map[string]int64{}, []store.ReasonCount{}
	if st != nil {
		a.Runs, a.ByOutcome, a.ByReason, a.LastRun, a.LastError = st.Total, st.ByOutcome, st.ByReason, st.LastRun, st.LastError
	}
	h, err := q.store.Hourly(ctx, ws, []string{id}, now.Add(-window), now)
	if err != nil {
		return nil, err
	}
	a.Hourly = h[id]
	return a, nil
}

func fromRule(a *rules.Automation) Automation {
	out := Automation{ID: a.ID, Name: a.Name, Workspace: a.Workspace, Live: true, Enabled: a.Enabled,
		Trigger: a.Trigger.Kind.String(), Object: a.Trigger.Object, Fire: a.Fire.String(), Action: a.ActionType()}
	if a.If != nil {
		out.Condition = a.If.Expr
	} else {
		out.Fire = ""
	}
	if a.Cooldown > 0 {
		out.Cooldown = DurationText(a.Cooldown)
	}
	if a.Pos.File != "" {
		out.Source = a.Pos.File + ":" + strconv.Itoa(a.Pos.Line)
	}
	return out
}

// Runs returns a page of runs (see store.Store.Runs).
func (q *Q) Runs(ctx context.Context, rq store.RunQuery) (*store.RunPage, error) {
	return q.store.Runs(ctx, rq)
}

// Run returns one run with its actions and outcomes, or store.ErrNotFound.
func (q *Q) Run(ctx context.Context, ws, runID string) (*store.RunDetail, error) {
	return q.store.Run(ctx, ws, runID)
}

// Check runs the Why not? check (see check.Checker.Check).
func (q *Q) Check(ctx context.Context, ws, automationID, object, recordID string) (*check.Result, error) {
	return q.checker.Check(ctx, ws, automationID, object, recordID)
}

// Workspaces returns the workspaces p may read that have runs or live
// automations, sorted.
func (q *Q) Workspaces(ctx context.Context, p *auth.Principal) ([]string, error) {
	have, err := q.store.Workspaces(ctx)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, ws := range have {
		set[ws] = true
	}
	if _, rs := q.rules(); rs != nil {
		for _, a := range rs.Automations {
			set[a.Workspace] = true
		}
	}
	listed, _ := p.Workspaces()
	for _, ws := range listed {
		set[ws] = true
	}
	var out []string
	for ws := range set {
		if p.Can(ws) {
			out = append(out, ws)
		}
	}
	slices.Sort(out)
	return out, nil
}

// DurationText writes d as a rule file would: "24h", "90m", "1h30m".
func DurationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// WindowText writes a window as ParseWindow reads it: "24h", "168h".
func WindowText(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

// ParseWindow reads the window parameter: a Go duration from 1h to 720h;
// "" is DefaultWindow.
func ParseWindow(s string) (time.Duration, error) {
	if s == "" {
		return DefaultWindow, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinWindow || d > MaxWindow {
		return 0, &store.ParamError{Param: "window", Msg: "want a duration from 1h to 720h, such as 24h or 168h"}
	}
	return d, nil
}

// ParseRunQuery reads the runs parameters of a URL (automation, object,
// record, outcome, reason, event, since, until, limit, cursor) into a
// query of workspace ws. since and until take an RFC 3339 time or a
// duration back from now (since=24h). Every error is a
// *store.ParamError naming the parameter.
func (q *Q) ParseRunQuery(ws string, v url.Values) (store.RunQuery, error) {
	rq := store.RunQuery{Workspace: ws}
	for _, name := range []string{"automation", "object", "record", "outcome", "reason", "event", "since", "until", "limit", "cursor"} {
		if len(v[name]) > 1 {
			return rq, &store.ParamError{Param: name, Msg: "given more than once"}
		}
	}
	rq.AutomationID, rq.Object, rq.RecordID = v.Get("automation"), v.Get("object"), v.Get("record")
	rq.Outcome, rq.Reason, rq.EventID = v.Get("outcome"), v.Get("reason"), v.Get("event")
	var err error
	if rq.Since, err = q.parseTime("since", v.Get("since")); err != nil {
		return rq, err
	}
	if rq.Until, err = q.parseTime("until", v.Get("until")); err != nil {
		return rq, err
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxLimit {
			return rq, &store.ParamError{Param: "limit", Msg: "want a number from 1 to " + strconv.Itoa(store.MaxLimit)}
		}
		rq.Limit = n
	}
	if s := v.Get("cursor"); s != "" {
		if rq.After, err = store.ParseCursor(s); err != nil {
			return rq, err
		}
	}
	return rq, rq.Validate()
}

func (q *Q) parseTime(param, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return q.clock().Add(-d), nil
	}
	return time.Time{}, &store.ParamError{Param: param, Msg: "want an RFC 3339 time (2026-11-24T10:00:00Z) or a duration back from now (24h)"}
}
