// Package api is the history's read-only JSON API under /api/v1, every
// path scoped to a workspace, described by the OpenAPI 3 document it
// serves at /api/v1/openapi.json (openapi.json, written by hand and
// embedded; a test holds it to the routes).
//
// Every request needs a token (`Authorization: Bearer`, or the page's
// session cookie): without one it is a 401; a workspace the token does
// not cover is a 404, as a workspace that does not exist, so that
// existence does not leak. A bad parameter is a 400 whose message names
// it. Handlers parse, call package history/query, and write JSON.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/history/check"
	"github.com/whenthen/whenthen/history/query"
	"github.com/whenthen/whenthen/history/store"
)

// Prefix is the path every route of the API starts with.
const Prefix = "/api/v1"

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPI }

// Routes are the API's routes, as http.ServeMux patterns.
var Routes = []string{
	"GET /api/v1/openapi.json",
	"GET /api/v1/workspaces",
	"GET /api/v1/workspaces/{ws}/automations",
	"GET /api/v1/workspaces/{ws}/automations/{id}",
	"GET /api/v1/workspaces/{ws}/automations/{id}/check",
	"GET /api/v1/workspaces/{ws}/runs",
	"GET /api/v1/workspaces/{ws}/runs/{run_id}",
	"GET /api/v1/workspaces/{ws}/records/{object}/{record_id}/runs",
}

// API serves the JSON API.
type API struct {
	q    *query.Q
	auth *auth.Auth
	log  *slog.Logger
}

// New returns the API over q, with access decided by a.
func New(q *query.Q, a *auth.Auth, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{q: q, auth: a, log: log}
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	h := map[string]func(w http.ResponseWriter, r *http.Request, ws string) error{
		Routes[2]: a.automations,
		Routes[3]: a.automation,
		Routes[4]: a.check,
		Routes[5]: a.runs,
		Routes[6]: a.run,
		Routes[7]: a.recordRuns,
	}
	mux.HandleFunc(Routes[0], func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openAPI)
	})
	mux.HandleFunc(Routes[1], a.serve(func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		wss, err := a.q.Workspaces(r.Context(), p)
		if err != nil {
			return err
		}
		out := make([]workspace, len(wss))
		for i, ws := range wss {
			out[i] = workspace{Name: ws, Path: query.WorkspacePath(ws)}
		}
		return writeJSON(w, http.StatusOK, map[string]any{"workspaces": out})
	}))
	for _, route := range Routes[2:] {
		fn := h[route]
		mux.HandleFunc(route, a.serve(func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
			ws := query.WorkspaceFromPath(r.PathValue("ws"))
			if !p.Can(ws) {
				return errNotFound
			}
			return fn(w, r, ws)
		}))
	}
}

type workspace struct {
	Name string `json:"name"`
	// Path is the name in URLs ("~" for records without a workspace).
	Path string `json:"path"`
}

// serve authenticates the request, calls fn and writes its error.
func (a *API) serve(fn func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p, ok := a.auth.Request(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="whenthen history"`)
			_ = writeError(w, http.StatusUnauthorized, "unauthorized", "a token is required: Authorization: Bearer TOKEN", "")
			return
		}
		if err := fn(w, r, p); err != nil {
			a.writeErr(w, r, err)
		}
	}
}

var errNotFound = errors.New("not found")

// Error is the body of every error answer.
type Error struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Parameter string `json:"parameter,omitempty"`
	} `json:"error"`
}

func (a *API) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var pe *store.ParamError
	switch {
	case errors.As(err, &pe):
		_ = writeError(w, http.StatusBadRequest, "bad_parameter", pe.Error(), pe.Param)
	case errors.Is(err, errNotFound), errors.Is(err, store.ErrNotFound), errors.Is(err, query.ErrNotFound), errors.Is(err, check.ErrNoAutomation):
		_ = writeError(w, http.StatusNotFound, "not_found", "not found", "")
	case errors.Is(err, check.ErrUnavailable):
		_ = writeError(w, http.StatusServiceUnavailable, "check_unavailable", err.Error(), "")
	case errors.Is(err, context.Canceled):
		// The client went away.
	default:
		a.log.Error("history API request failed", "route", r.Pattern, "err", err)
		_ = writeError(w, http.StatusInternalServerError, "internal", "the history database failed to answer; try again (the service's log says why)", "")
	}
}

func writeError(w http.ResponseWriter, status int, code, msg, param string) error {
	var e Error
	e.Error.Code, e.Error.Message, e.Error.Parameter = code, msg, param
	return writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// AutomationList is the body of GET .../automations.
type AutomationList struct {
	Workspace   string             `json:"workspace"`
	Window      string             `json:"window"`
	Now         time.Time          `json:"now"`
	Automations []query.Automation `json:"automations"`
}

func (a *API) automations(w http.ResponseWriter, r *http.Request, ws string) error {
	if err := only(r, "window", "hourly"); err != nil {
		return err
	}
	win, err := query.ParseWindow(r.URL.Query().Get("window"))
	if err != nil {
		return err
	}
	hourly := false
	switch r.URL.Query().Get("hourly") {
	case "", "false":
	case "true":
		hourly = true
	default:
		return &store.ParamError{Param: "hourly", Msg: "want true or false"}
	}
	list, err := a.q.Automations(r.Context(), ws, win, hourly)
	if err != nil {
		return err
	}
	if list == nil {
		list = []query.Automation{}
	}
	return writeJSON(w, http.StatusOK, AutomationList{Workspace: ws, Window: query.WindowText(win), Now: a.q.Now().UTC(), Automations: list})
}

func (a *API) automation(w http.ResponseWriter, r *http.Request, ws string) error {
	if err := only(r, "window"); err != nil {
		return err
	}
	win, err := query.ParseWindow(r.URL.Query().Get("window"))
	if err != nil {
		return err
	}
	au, err := a.q.Automation(r.Context(), ws, r.PathValue("id"), win)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, au)
}

func (a *API) check(w http.ResponseWriter, r *http.Request, ws string) error {
	if err := only(r, "object", "record"); err != nil {
		return err
	}
	v := r.URL.Query()
	res, err := a.q.Check(r.Context(), ws, r.PathValue("id"), v.Get("object"), v.Get("record"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

var runParams = []string{"automation", "object", "record", "outcome", "reason", "event", "since", "until", "limit", "cursor"}

func (a *API) runs(w http.ResponseWriter, r *http.Request, ws string) error {
	if err := only(r, runParams...); err != nil {
		return err
	}
	rq, err := a.q.ParseRunQuery(ws, r.URL.Query())
	if err != nil {
		return err
	}
	page, err := a.q.Runs(r.Context(), rq)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (a *API) recordRuns(w http.ResponseWriter, r *http.Request, ws string) error {
	if err := only(r, "automation", "outcome", "reason", "event", "since", "until", "limit", "cursor"); err != nil {
		return err
	}
	v := r.URL.Query()
	v.Set("object", r.PathValue("object"))
	v.Set("record", r.PathValue("record_id"))
	rq, err := a.q.ParseRunQuery(ws, v)
	if err != nil {
		return err
	}
	page, err := a.q.Runs(r.Context(), rq)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (a *API) run(w http.ResponseWriter, r *http.Request, ws string) error {
	if err := only(r); err != nil {
		return err
	}
	d, err := a.q.Run(r.Context(), ws, r.PathValue("run_id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// only refuses a parameter the route does not take, so that a typo is
// an error rather than a filter silently not applied.
func only(r *http.Request, params ...string) error {
	for name := range r.URL.Query() {
		ok := false
		for _, p := range params {
			ok = ok || p == name
		}
		if !ok {
			return &store.ParamError{Param: name, Msg: "not a parameter of this route"}
		}
	}
	return nil
}
