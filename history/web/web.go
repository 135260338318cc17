// Package web is the history's page: server-rendered with html/template,
// its stylesheet, script and templates embedded (no CDN, no build step;
// it works offline). Handlers are thin over package history/query, the
// layer the JSON API uses too.
//
// Pages: the workspaces a token may read, a workspace's overview (each
// automation with a chart of its runs per hour by outcome over 24 hours
// or 7 days, inline SVG drawn here), an automation (its runs, filtered
// and paginated, and the Why not? check), all runs, a run (its why, its
// persons, its context, its actions and each delivery outcome with every
// attempt), a record's timeline. Times are written in UTC inside
// <time datetime> elements, which static/app.js shows in the viewer's
// time zone.
//
// Access is the API's: a sign-in form takes a token and sets the session
// cookie (package history/auth); a workspace the token does not cover is
// a 404. Record ids, automation ids and field values are data: they only
// ever reach a page through html/template's contextual escaping, never
// as template.HTML or template.URL.
package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/history/check"
	"github.com/whenthen/whenthen/history/query"
	"github.com/whenthen/whenthen/history/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the page templates, each rendered inside layout.html.
var pages = []string{"signin", "workspaces", "overview", "automation", "runs", "run", "record", "error", "continue"}

// Web serves the page.
type Web struct {
	q     *query.Q
	auth  *auth.Auth
	log   *slog.Logger
	tmpl  map[string]*template.Template
	files http.Handler
}

// New parses the templates and returns the page over q, with access
// decided by a.
func New(q *query.Q, a *auth.Auth, log *slog.Logger) (*Web, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Web{q: q, auth: a, log: log, tmpl: map[string]*template.Template{}}
	for _, p := range pages {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", p, err)
		}
		w.tmpl[p] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	w.files = http.StripPrefix("/static/", http.FileServerFS(static))
	return w, nil
}

// Register adds the page's routes to mux.
func (w *Web) Register(mux *http.ServeMux) {
	mux.Handle("GET /static/", w.files)
	mux.HandleFunc("GET /{$}", w.page(w.home))
	mux.HandleFunc("GET /signin", w.signinForm)
	mux.HandleFunc("POST /signin", w.signin)
	mux.HandleFunc("POST /signout", w.signout)
	mux.HandleFunc("GET /w/{ws}/{$}", w.workspace(w.overview))
	mux.HandleFunc("GET /w/{ws}/automations/{id}", w.workspace(w.automation))
	mux.HandleFunc("GET /w/{ws}/runs", w.workspace(w.runs))
	mux.HandleFunc("GET /w/{ws}/runs/{run_id}", w.workspace(w.run))
	mux.HandleFunc("GET /w/{ws}/records/{object}/{record_id}", w.workspace(w.record))
}

// view is what every page template gets.
type view struct {
	Title     string
	Workspace *string // nil outside a workspace
	Signed    string  // the token's name
	CSRF      string
	Body      any
}

// WSPath is the workspace's name in URLs.
func (v *view) WSPath() string {
	if v.Workspace == nil {
		return ""
	}
	return query.WorkspacePath(*v.Workspace)
}

// WSName is the workspace's name for people.
func (v *view) WSName() string {
	if v.Workspace == nil {
		return ""
	}
	return workspaceName(*v.Workspace)
}

func workspaceName(ws string) string {
	if ws == "" {
		return "(no workspace)"
	}
	return ws
}

// httpError is an error with the status and message a page shows.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var errNotFound = &httpError{http.StatusNotFound, "Not found: there is no such page, or your token does not cover this workspace."}

type handler func(w http.ResponseWriter, r *http.Request, p *auth.Principal, v *view) error

// page authenticates a page request and renders what fn returns; a
// request without a session goes to the sign-in form.
func (web *Web) page(fn handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		headers(w)
		p, ok := web.auth.Request(r)
		if !ok {
			// A link followed from another site comes without the
			// SameSite=Strict session cookie: navigate once more from
			// here, which sends it.
			if r.Header.Get("Sec-Fetch-Site") == "cross-site" && r.URL.Query().Get("again") == "" {
				again := *r.URL
				q := again.Query()
				q.Set("again", "1")
				again.RawQuery = q.Encode()
				web.render(w, r, http.StatusOK, "continue", &view{Title: "Continue", Body: again.RequestURI()})
				return
			}
			next := r.URL.RequestURI()
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		v := &view{Signed: p.Name, CSRF: web.auth.CSRFToken(w, r)}
		if err := fn(w, r, p, v); err != nil {
			web.fail(w, r, v, err)
		}
	}
}

// workspace is page for the routes of one workspace: a workspace the
// token does not cover is a 404.
func (web *Web) workspace(fn func(w http.ResponseWriter, r *http.Request, ws string, v *view) error) http.HandlerFunc {
	return web.page(func(w http.ResponseWriter, r *http.Request, p *auth.Principal, v *view) error {
		ws := query.WorkspaceFromPath(r.PathValue("ws"))
		if !p.Can(ws) {
			return errNotFound
		}
		v.Workspace = &ws
		return fn(w, r, ws, v)
	})
}

func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (web *Web) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	var he *httpError
	var pe *store.ParamError
	switch {
	case errors.As(err, &he):
	case errors.As(err, &pe):
		he = &httpError{http.StatusBadRequest, "Bad parameter " + pe.Error()}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, query.ErrNotFound), errors.Is(err, check.ErrNoAutomation):
		he = errNotFound
	default:
		web.log.Error("history page failed", "route", r.Pattern, "err", err)
		he = &httpError{http.StatusInternalServerError, "The history database did not answer. Try again; the service's log says why."}
	}
	v.Title, v.Body = http.StatusText(he.status), he
	web.render(w, r, he.status, "error", v)
}

// render executes a page into a buffer first, so that a template error
// is a clean 500 rather than half a page.
func (web *Web) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	var buf bytes.Buffer
	if err := web.tmpl[page].Execute(&buf, v); err != nil {
		web.log.Error("history page: template failed", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// home lists the workspaces the token may read; with one, it goes there.
func (web *Web) home(w http.ResponseWriter, r *http.Request, p *auth.Principal, v *view) error {
	wss, err := web.q.Workspaces(r.Context(), p)
	if err != nil {
		return err
	}
	if len(wss) == 1 {
		http.Redirect(w, r, "/w/"+url.PathEscape(query.WorkspacePath(wss[0]))+"/", http.StatusSeeOther)
		return nil
	}
	type item struct{ Name, Path string }
	var items []item
	for _, ws := range wss {
		items = append(items, item{workspaceName(ws), query.WorkspacePath(ws)})
	}
	v.Title, v.Body = "Workspaces", items
	web.render(w, r, http.StatusOK, "workspaces", v)
	return nil
}

// signinForm shows the sign-in form; signed in already, it goes on to
// next.
func (web *Web) signinForm(w http.ResponseWriter, r *http.Request) {
	headers(w)
	next := localPath(r.URL.Query().Get("next"))
	if _, ok := web.auth.Session(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	web.render(w, r, http.StatusOK, "signin", &view{Title: "Sign in", CSRF: web.auth.CSRFToken(w, r), Body: signinBody{Next: next}})
}

type signinBody struct {
	Next, Error string
}

// signin checks the form (CSRF, origin) and the token, and sets the
// session.
func (web *Web) signin(w http.ResponseWriter, r *http.Request) {
	headers(w)
	if err := web.auth.CheckForm(r); err != nil {
		web.render(w, r, http.StatusForbidden, "error", &view{Title: "Forbidden", Body: &httpError{http.StatusForbidden, "Forbidden: " + strings.TrimPrefix(err.Error(), "auth: forbidden: ")}})
		return
	}
	next := localPath(r.PostForm.Get("next"))
	p, ok := web.auth.Check(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		web.render(w, r, http.StatusUnauthorized, "signin", &view{Title: "Sign in", CSRF: web.auth.CSRFToken(w, r),
			Body: signinBody{Next: next, Error: "That token is not one this service knows. Tokens are printed by `whenthen history token`; their hashes go in the configuration."}})
		return
	}
	web.auth.SetSession(w, r, p)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (web *Web) signout(w http.ResponseWriter, r *http.Request) {
	headers(w)
	if err := web.auth.CheckForm(r); err != nil {
		web.render(w, r, http.StatusForbidden, "error", &view{Title: "Forbidden", Body: &httpError{http.StatusForbidden, "Forbidden: " + strings.TrimPrefix(err.Error(), "auth: forbidden: ")}})
		return
	}
	web.auth.ClearSession(w, r)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// localPath returns next if it is a path on this site, else "/": the
// sign-in form never redirects elsewhere.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}
