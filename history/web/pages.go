package web

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/whenthen/whenthen/history/check"
	"github.com/whenthen/whenthen/history/query"
	"github.com/whenthen/whenthen/history/store"
)

// windows are the chart spans the page offers.
var windows = []struct {
	Label string
	D     time.Duration
}{{"24 hours", 24 * time.Hour}, {"7 days", 7 * 24 * time.Hour}}

// windowParam reads ?window=, limited to the spans the page offers.
func windowParam(r *http.Request) (time.Duration, error) {
	d, err := query.ParseWindow(r.URL.Query().Get("window"))
	if err != nil {
		return 0, err
	}
	for _, w := range windows {
		if w.D == d {
			return d, nil
		}
	}
	return 0, &store.ParamError{Param: "window", Msg: "the page shows 24h or 168h"}
}

type windowLink struct {
	Label, Value string
	Current      bool
}

func windowLinks(cur time.Duration) []windowLink {
	out := make([]windowLink, len(windows))
	for i, w := range windows {
		out[i] = windowLink{w.Label, query.WindowText(w.D), w.D == cur}
	}
	return out
}

type overviewBody struct {
	Window      time.Duration
	Windows     []windowLink
	Automations []automationRow
	Now         time.Time
}

type automationRow struct {
	query.Automation
	Chart *chart
}

func (web *Web) overview(w http.ResponseWriter, r *http.Request, ws string, v *view) error {
	win, err := windowParam(r)
	if err != nil {
		return err
	}
	list, err := web.q.Automations(r.Context(), ws, win, true)
	if err != nil {
		return err
	}
	now := web.q.Now()
	body := overviewBody{Window: win, Windows: windowLinks(win), Now: now}
	for _, a := range list {
		body.Automations = append(body.Automations, automationRow{Automation: a, Chart: newChart(a.Hourly, now, win, 360, 48)})
	}
	v.Title, v.Body = "Automations", body
	web.render(w, r, http.StatusOK, "overview", v)
	return nil
}

// runFilter is the runs filter form's values.
type runFilter struct {
	Automation, Object, Record, Outcome, Reason, Event, Since, Until string
}

func filterOf(r *http.Request) runFilter {
	q := r.URL.Query()
	return runFilter{Automation: q.Get("automation"), Object: q.Get("object"), Record: q.Get("record"), Outcome: q.Get("outcome"),
		Reason: q.Get("reason"), Event: q.Get("event"), Since: q.Get("since"), Until: q.Get("until")}
}

// Active tells whether any filter is set.
func (f runFilter) Active() bool { return f != runFilter{} }

type runsBody struct {
	// WS is the workspace's name in URLs; Empty what to say when no run
	// matches.
	WS       string
	Empty    string
	Filter   runFilter
	Outcomes []string
	Page     *store.RunPage
	// Next is the URL of the next page, "" on the last one.
	Next string
	// Fixed says which filter the page sets itself (the automation's
	// page sets automation).
	Fixed string
}

// runsPage reads the runs the request's filters select.
func (web *Web) runsPage(r *http.Request, ws string, set url.Values) (*runsBody, error) {
	q := r.URL.Query()
	params := url.Values{}
	for _, k := range []string{"automation", "object", "record", "outcome", "reason", "event", "since", "until", "limit", "cursor"} {
		if v := q.Get(k); v != "" {
			params.Set(k, v)
		}
	}
	for k, v := range set {
		params[k] = v
	}
	rq, err := web.q.ParseRunQuery(ws, params)
	if err != nil {
		return nil, err
	}
	page, err := web.q.Runs(r.Context(), rq)
	if err != nil {
		return nil, err
	}
	body := &runsBody{WS: query.WorkspacePath(ws), Filter: filterOf(r), Outcomes: store.Outcomes, Page: page}
	body.Empty = "No runs match these filters. Widen them (clear Since, Outcome or Reason)."
	if !body.Filter.Active() && rq.After == nil {
		body.Empty = "No runs yet. Runs appear here once whenthen run writes them to the runs topic this service reads."
	}
	if page.NextCursor != "" {
		next := r.URL.Query()
		next.Set("cursor", page.NextCursor)
		body.Next = r.URL.Path + "?" + next.Encode()
	}
	return body, nil
}

type automationBody struct {
	A       *query.Automation
	Chart   *chart
	Window  time.Duration
	Windows []windowLink
	Runs    *runsBody
	Check   *checkView
}

// checkView is the Why not? form and its result.
type checkView struct {
	Available bool
	Object    string
	Record    string
	Result    *check.Result
	Error     string
}

func (web *Web) automation(w http.ResponseWriter, r *http.Request, ws string, v *view) error {
	id := r.PathValue("id")
	win, err := windowParam(r)
	if err != nil {
		return err
	}
	a, err := web.q.Automation(r.Context(), ws, id, win)
	if err != nil {
		return err
	}
	runs, err := web.runsPage(r, ws, url.Values{"automation": {id}})
	if err != nil {
		return err
	}
	runs.Fixed = "automation"
	if !runs.Filter.Active() {
		runs.Empty = "No runs of this automation are stored. A condition that is false leaves no run: use Why not? above with a record id to see what the condition sees."
	}
	body := automationBody{A: a, Chart: newChart(a.Hourly, web.q.Now(), win, 720, 120), Window: win, Windows: windowLinks(win), Runs: runs}
	cv := &checkView{Available: web.q.CheckAvailable(), Object: r.URL.Query().Get("check_object"), Record: r.URL.Query().Get("check_record")}
	if cv.Object == "" {
		cv.Object = a.Object
	}
	if cv.Record != "" && a.Live {
		res, err := web.q.Check(r.Context(), ws, id, cv.Object, cv.Record)
		var pe *store.ParamError
		switch {
		case err == nil:
			cv.Result = res
		case errors.Is(err, check.ErrUnavailable):
			cv.Error = err.Error()
		case errors.As(err, &pe):
			cv.Error = pe.Error()
		default:
			return err
		}
	}
	body.Check = cv
	v.Title, v.Body = a.ID, body
	web.render(w, r, http.StatusOK, "automation", v)
	return nil
}

func (web *Web) runs(w http.ResponseWriter, r *http.Request, ws string, v *view) error {
	body, err := web.runsPage(r, ws, nil)
	if err != nil {
		return err
	}
	v.Title, v.Body = "Runs", body
	web.render(w, r, http.StatusOK, "runs", v)
	return nil
}

func (web *Web) run(w http.ResponseWriter, r *http.Request, ws string, v *view) error {
	d, err := web.q.Run(r.Context(), ws, r.PathValue("run_id"))
	if err != nil {
		return err
	}
	v.Title, v.Body = "Run of "+d.AutomationID, d
	web.render(w, r, http.StatusOK, "run", v)
	return nil
}

type recordBody struct {
	Object, RecordID string
	Runs             *runsBody
	// Automations are the live automations on the record's object, for
	// the Why not? links.
	Automations []query.Automation
}

func (web *Web) record(w http.ResponseWriter, r *http.Request, ws string, v *view) error {
	object, id := r.PathValue("object"), r.PathValue("record_id")
	runs, err := web.runsPage(r, ws, url.Values{"object": {object}, "record": {id}})
	if err != nil {
		return err
	}
	runs.Fixed = "record"
	if !runs.Filter.Active() {
		runs.Empty = "No automation ran for this record. Use Why not? below to see why each one does not."
	}
	all, err := web.q.Automations(r.Context(), ws, query.MinWindow, false)
	if err != nil {
		return err
	}
	body := recordBody{Object: object, RecordID: id, Runs: runs}
	for _, a := range all {
		if a.Live && a.Object == object && a.Trigger != "tracker" {
			body.Automations = append(body.Automations, a)
		}
	}
	v.Title, v.Body = object+" "+id, body
	web.render(w, r, http.StatusOK, "record", v)
	return nil
}
