package history_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/history/store/storetest"
	"github.com/whenthen/whenthen/internal/testenv"
)

// browser is an HTTP client with cookies, as a browser is, that does not
// follow redirects (the tests look at them).
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (int, string, http.Header) {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header
}

func (b *browser) get(path string) (int, string, http.Header) {
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, hdr map[string]string) (int, string, http.Header) {
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in with token through the form, as a person does.
func (b *browser) signIn(token string) {
	b.t.Helper()
	code, page, _ := b.get("/signin?next=%2Fw%2Facme%2F")
	m := csrfField.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		b.t.Fatalf("sign-in form: %d %s", code, page)
	}
	code, _, hdr := b.post("/signin", url.Values{"csrf": {m[1]}, "token": {token}, "next": {"/w/acme/"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/w/acme/" {
		b.t.Fatalf("sign in: %d, location %q", code, hdr.Get("Location"))
	}
}

// TestPages renders every page against both stores, with hostile data
// in every place a page shows data, and tries what a forger would.
func TestPages(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) { testPages(t, db(t)) })
	}
}

func testPages(t *testing.T, db string) {
	e := start(t, db, nil, nil)
	now := time.Now().UTC().Truncate(time.Millisecond)
	const evil = `<script>alert("x")</script>`
	// A run with script in its automation id, record id, event id, error
	// and field values, as a broken or hostile producer could write it.
	bad := storetest.NewRun("acme", "x"+evil, "evt"+evil, "opportunity", "O"+evil, now.Add(-time.Minute), "error", "eval_error")
	bad.Error = "no such key: " + evil
	bad.Why.Values[0].Value = json.RawMessage(`"` + strings.ReplaceAll(evil, `"`, `\"`) + `"`)
	won := storetest.NewRun("acme", "closed-won-brief", "evt-0012", "opportunity", "O-2001", now.Add(-2*time.Minute), "completed", "")
	act := storetest.ActionOf(won)
	out := storetest.OutcomeOf(act, "revops-email", actions.StatusFailed, now)
	out.AttemptLog[0].Error = "550 " + evil
	globex := storetest.NewRun("globex", "closed-won-brief", "evt-g", "opportunity", "O-9", now, "completed", "")
	e.produce(actions.DefaultActionsTopic, act)
	e.produce(actions.DefaultOutcomesTopic, out)
	e.produce(actions.DefaultRunsTopic, bad, won, globex)
	e.waitRuns("acme", 2)
	testenv.WaitFor(t, 30*time.Second, "the outcome", func() bool {
		code, b := e.get(e.acme, "/api/v1/workspaces/acme/runs/"+won.RunID)
		return code == http.StatusOK && strings.Contains(string(b), "revops-email")
	})

	anon := newBrowser(t, e.base)
	t.Run("signed out", func(t *testing.T) {
		code, _, hdr := anon.get("/w/acme/")
		if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/signin?next=") {
			t.Fatalf("a page without a session: %d %q", code, hdr.Get("Location"))
		}
		// A link from another site arrives without the Strict cookie: one
		// navigation from here brings it.
		req, _ := http.NewRequest(http.MethodGet, e.base+"/w/acme/runs/"+won.RunID, nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		code, page, _ := anon.do(req)
		if code != http.StatusOK || !strings.Contains(page, `href="/w/acme/runs/`+won.RunID+`?again=1"`) {
			t.Fatalf("cross-site arrival: %d %s", code, page)
		}
	})

	t.Run("forged sign-in", func(t *testing.T) {
		f := newBrowser(t, e.base)
		_, page, _ := f.get("/signin")
		csrf := csrfField.FindStringSubmatch(page)[1]
		for name, tc := range map[string]struct {
			form url.Values
			hdr  map[string]string
		}{
			"no csrf":         {url.Values{"token": {e.acme}}, nil},
			"wrong csrf":      {url.Values{"token": {e.acme}, "csrf": {strings.Repeat("A", 43)}}, nil},
			"from evil.com":   {url.Values{"token": {e.acme}, "csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}},
			"cross-site post": {url.Values{"token": {e.acme}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		} {
			code, _, hdr := f.post("/signin", tc.form, tc.hdr)
			if code != http.StatusForbidden || hdr.Get("Set-Cookie") != "" && strings.Contains(hdr.Get("Set-Cookie"), auth.SessionCookie) {
				t.Errorf("%s: %d, set-cookie %q", name, code, hdr.Get("Set-Cookie"))
			}
		}
		// A fresh client without the CSRF cookie, posting the field a
		// forger copied: refused.
		g := newBrowser(t, e.base)
		if code, _, _ := g.post("/signin", url.Values{"token": {e.acme}, "csrf": {csrf}}, nil); code != http.StatusForbidden {
			t.Errorf("post without the CSRF cookie: %d", code)
		}
		// A wrong token: the form again, with a message.
		code, page, _ := f.post("/signin", url.Values{"token": {"wth_nope"}, "csrf": {csrf}}, nil)
		if code != http.StatusUnauthorized || !strings.Contains(page, "not one this service knows") {
			t.Errorf("wrong token: %d", code)
		}
		// An open redirect through next: refused.
		code, _, hdr := f.post("/signin", url.Values{"token": {e.acme}, "csrf": {csrf}, "next": {"//evil.example/x"}}, nil)
		if code != http.StatusSeeOther || hdr.Get("Location") != "/" {
			t.Errorf("next=//evil.example: %d %q", code, hdr.Get("Location"))
		}
	})

	b := newBrowser(t, e.base)
	b.signIn(e.acme)
	u, _ := url.Parse(e.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == auth.SessionCookie && c.Value == e.acme {
			t.Fatal("the session cookie holds the token")
		}
	}

	pages := map[string][]string{
		"/w/acme/":                             {"closed-won-brief", "renewal-30d", "<svg", "Last run"},
		"/w/acme/automations/closed-won-brief": {"record.stage", "Why not?", "unavailable", won.RunID},
		"/w/acme/automations/closed-won-brief?outcome=error": {"No runs match"},
		"/w/acme/runs":                                                             {won.RunID, bad.RunID, "delivery failed"},
		"/w/acme/runs/" + won.RunID:                                                {"revops-email", "dial tcp: i/o timeout", "record.amount", "250000", "O-2001"},
		"/w/acme/runs/" + bad.RunID:                                                {"no such key"},
		"/w/acme/records/opportunity/O-2001":                                       {won.RunID, "closed-won-brief"},
		"/w/acme/records/opportunity/" + url.PathEscape("O"+evil):                  {bad.RunID},
		"/w/acme/automations/" + url.PathEscape("x"+evil):                          {"not in the live rules"},
		"/w/acme/runs?record=" + url.QueryEscape("O"+evil) + "&object=opportunity": {bad.RunID},
	}
	for path, wants := range pages {
		t.Run("page "+path, func(t *testing.T) {
			code, page, hdr := b.get(path)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, page)
			}
			for _, w := range wants {
				if !strings.Contains(page, w) {
					t.Errorf("the page lacks %q", w)
				}
			}
			if strings.Contains(page, "<script>alert") || strings.Contains(page, `alert("x")</script>`) {
				t.Fatalf("data reached the page unescaped:\n%s", page)
			}
			if strings.Contains(path, "evil") || strings.Contains(path, "%3Cscript") || path == "/w/acme/runs" {
				if !strings.Contains(page, "&lt;script&gt;") {
					t.Errorf("the hostile value is not shown escaped")
				}
			}
			if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}

	t.Run("cross-workspace pages", func(t *testing.T) {
		for _, path := range []string{"/w/globex/", "/w/globex/runs", "/w/globex/runs/" + globex.RunID, "/w/acme/runs/" + globex.RunID,
			"/w/globex/automations/closed-won-brief", "/w/globex/records/opportunity/O-9", "/w/nowhere/"} {
			code, page, _ := b.get(path)
			if code != http.StatusNotFound || strings.Contains(page, "O-9") {
				t.Errorf("%s: %d", path, code)
			}
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		code, page, _ := b.get("/w/acme/runs?limit=0")
		if code != http.StatusBadRequest || !strings.Contains(page, "limit") {
			t.Fatalf("%d %s", code, page)
		}
	})

	t.Run("sign out", func(t *testing.T) {
		_, page, _ := b.get("/w/acme/")
		csrf := csrfField.FindStringSubmatch(page)[1]
		if code, _, _ := b.post("/signout", url.Values{}, nil); code != http.StatusForbidden {
			t.Fatalf("sign-out without its CSRF token: %d", code)
		}
		if code, _, _ := b.post("/signout", url.Values{"csrf": {csrf}}, nil); code != http.StatusSeeOther {
			t.Fatalf("sign out: %d", code)
		}
		if code, _, _ := b.get("/w/acme/"); code != http.StatusSeeOther {
			t.Fatalf("a page after signing out: %d", code)
		}
	})
}
