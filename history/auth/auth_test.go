package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func newAuth(t *testing.T, now *time.Time, tokens ...Token) *Auth {
	t.Helper()
	a, err := New(Options{Tokens: tokens, SessionKey: []byte(strings.Repeat("k", 32)), Clock: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	acmeTok, acmeHash := NewToken()
	allTok, allHash := NewToken()
	a := newAuth(t, &now, Token{Name: "revops-acme", SHA256: acmeHash, Workspaces: []string{"acme", NoWorkspace}},
		Token{Name: "ops", SHA256: strings.ToUpper(allHash), Workspaces: []string{AllWorkspaces}})
	if !strings.HasPrefix(acmeTok, TokenPrefix) || len(acmeTok) != len(TokenPrefix)+43 || Hash(acmeTok) != acmeHash {
		t.Fatalf("token %q hash %q", acmeTok, acmeHash)
	}
	p, ok := a.Check(acmeTok)
	if !ok || p.Name != "revops-acme" || !p.Can("acme") || !p.Can("") || p.Can("globex") {
		t.Fatalf("acme token: %+v %v", p, ok)
	}
	if p, ok := a.Check(allTok); !ok || !p.Can("globex") || !p.Can("") {
		t.Fatalf("all token: %+v %v", p, ok)
	}
	for _, bad := range []string{"", acmeTok + "x", acmeTok[:len(acmeTok)-1], acmeHash, strings.ToUpper(acmeTok)} {
		if _, ok := a.Check(bad); ok {
			t.Errorf("token %q accepted", bad)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+acmeTok)
	if p, ok := a.Request(r); !ok || p.Name != "revops-acme" {
		t.Fatal("bearer token not read")
	}
	r.Header.Set("Authorization", "Basic "+acmeTok)
	if _, ok := a.Request(r); ok {
		t.Fatal("a Basic header was taken for a bearer token")
	}
}

func TestConfigErrors(t *testing.T) {
	_, h := NewToken()
	for _, tc := range []struct {
		name   string
		tokens []Token
		want   string
	}{
		{"no name", []Token{{SHA256: h, Workspaces: []string{"a"}}}, "a name is required"},
		{"twice", []Token{{Name: "a", SHA256: h, Workspaces: []string{"a"}}, {Name: "a", SHA256: h, Workspaces: []string{"a"}}}, "used twice"},
		{"clear text", []Token{{Name: "a", SHA256: "wth_secret", Workspaces: []string{"a"}}}, "64 hex digits"},
		{"no workspace", []Token{{Name: "a", SHA256: h}}, "no workspaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Tokens: tc.tokens})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "wth_secret") {
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestSession(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tok, h := NewToken()
	a := newAuth(t, &now, Token{Name: "revops-acme", SHA256: h, Workspaces: []string{"acme"}})
	p, _ := a.Check(tok)
	w := httptest.NewRecorder()
	a.SetSession(w, httptest.NewRequest("POST", "http://127.0.0.1:8080/signin", nil), p)
	c := w.Result().Cookies()[0]
	if c.Name != SessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure {
		t.Fatalf("session cookie on loopback: %+v", c)
	}
	w2 := httptest.NewRecorder()
	a.SetSession(w2, httptest.NewRequest("POST", "https://history.example.com/signin", nil), p)
	if !w2.Result().Cookies()[0].Secure {
		t.Fatal("session cookie not Secure off loopback")
	}
	req := func(v string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: v})
		return r
	}
	if got, ok := a.Session(req(c.Value)); !ok || got.Name != "revops-acme" || !got.Can("acme") {
		t.Fatalf("session not read back: %+v", got)
	}
	parts := strings.Split(c.Value, ".")
	for name, v := range map[string]string{
		"other name": "b3Bz." + parts[1] + "." + parts[2],
		"later":      parts[0] + "." + "99999999999" + "." + parts[2],
		"no mac":     parts[0] + "." + parts[1] + ".",
		"garbage":    "x",
	} {
		if _, ok := a.Session(req(v)); ok {
			t.Errorf("forged session %s accepted", name)
		}
	}
	now = now.Add(DefaultSessionTTL)
	if _, ok := a.Session(req(c.Value)); ok {
		t.Fatal("expired session accepted")
	}
	now = now.Add(-time.Hour)
	// The token's hash changes (rotated): the session ends.
	_, h2 := NewToken()
	b := newAuth(t, &now, Token{Name: "revops-acme", SHA256: h2, Workspaces: []string{"acme"}})
	if _, ok := b.Session(req(c.Value)); ok {
		t.Fatal("session of a rotated token accepted")
	}
	// Another process with another random key does not accept it either.
	other, _ := New(Options{Tokens: []Token{{Name: "revops-acme", SHA256: h, Workspaces: []string{"acme"}}}})
	if _, ok := other.Session(req(c.Value)); ok {
		t.Fatal("session accepted under another key")
	}
}

func TestCheckForm(t *testing.T) {
	now := time.Now()
	a := newAuth(t, &now)
	w := httptest.NewRecorder()
	csrf := a.CSRFToken(w, httptest.NewRequest("GET", "http://127.0.0.1/signin", nil))
	cookie := w.Result().Cookies()[0]
	post := func(field string, withCookie bool, hdr map[string]string) error {
		form := url.Values{CSRFField: {field}, "token": {"x"}}
		r := httptest.NewRequest("POST", "http://127.0.0.1/signin", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if withCookie {
			r.AddCookie(cookie)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return a.CheckForm(r)
	}
	if err := post(csrf, true, map[string]string{"Sec-Fetch-Site": "same-origin"}); err != nil {
		t.Fatalf("a good form refused: %v", err)
	}
	for name, err := range map[string]error{
		"no field":     post("", true, nil),
		"wrong field":  post(strings.Repeat("A", 43), true, nil),
		"no cookie":    post(csrf, false, nil),
		"cross-site":   post(csrf, true, map[string]string{"Sec-Fetch-Site": "cross-site"}),
		"other origin": post(csrf, true, map[string]string{"Origin": "https://evil.example"}),
	} {
		if err == nil {
			t.Errorf("%s: forged form accepted", name)
		}
	}
}
