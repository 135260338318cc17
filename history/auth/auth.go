// Package auth decides who may read the run history: bearer tokens bound
// to workspaces, configured only as SHA-256 hashes, and the sign-in
// session of the history page.
//
// A token is 32 random bytes, written "wth_" + base64url ([NewToken]).
// The configuration holds its name, the hex SHA-256 of the token
// ([Hash]) and the workspaces it may read ("*" for all). A request
// presents the token as `Authorization: Bearer TOKEN`; its hash is
// compared with every configured one in constant time.
//
// The page signs in by posting a token to a form: the session is a cookie
// (HttpOnly, SameSite=Strict, Secure unless the page is served on a
// loopback name) holding the token's name, an expiry and an HMAC over
// both and the token's hash, keyed by a session key. A session ends when
// it expires, when the token is removed from the configuration or its
// hash changes, and when the session key changes (by default a random
// one per process: a restart signs everyone out). The sign-in and
// sign-out forms carry a CSRF token that must match a cookie of its own
// (the double-submit pattern), and requests from another origin are
// refused outright (http.CrossOriginProtection).
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AllWorkspaces in a token's Workspaces grants every workspace.
const AllWorkspaces = "*"

// NoWorkspace names, in a token's Workspaces and in URLs, the workspace
// of records that carry none ("" in the records). In YAML write it
// quoted: "~".
const NoWorkspace = "~"

// Cookie names.
const (
	SessionCookie = "whenthen_session"
	CSRFCookie    = "whenthen_csrf"
	// CSRFField is the form field that must match the CSRF cookie.
	CSRFField = "csrf"
)

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 12 * time.Hour

// TokenPrefix starts every token NewToken makes.
const TokenPrefix = "wth_"

// Token is a configured token: its name, the hex SHA-256 of its secret,
// and the workspaces it may read.
type Token struct {
	Name       string   `yaml:"name"`
	SHA256     string   `yaml:"sha256"`
	Workspaces []string `yaml:"workspaces"`
}

// Options configure an [Auth].
type Options struct {
	// Tokens are the tokens that may read the history. None: nobody can.
	Tokens []Token
	// SessionKey keys the session cookies' HMAC (at least 32 bytes);
	// default a random key per process.
	SessionKey []byte
	// SessionTTL is how long a sign-in lasts; default DefaultSessionTTL.
	SessionTTL time.Duration
	// Clock is the time source; default time.Now.
	Clock func() time.Time
}

// Auth checks tokens and sessions. It is safe for concurrent use.
type Auth struct {
	tokens []entry
	key    []byte
	ttl    time.Duration
	clock  func() time.Time
	cop    *http.CrossOriginProtection
}

type entry struct {
	Principal
	hash []byte // 32 bytes
}

// Principal is who a request is: a token's name and its workspaces.
type Principal struct {
	Name string
	all  bool
	ws   map[string]bool
}

// Can reports whether p may read workspace ws ("" for records without
// one).
func (p *Principal) Can(ws string) bool { return p != nil && (p.all || p.ws[ws]) }

// Workspaces returns the workspaces p may read, sorted, and whether it
// may read every workspace.
func (p *Principal) Workspaces() (list []string, all bool) {
	for ws := range p.ws {
		list = append(list, ws)
	}
	slices.Sort(list)
	return list, p.all
}

// New checks opts and returns an Auth.
func New(opts Options) (*Auth, error) {
	a := &Auth{ttl: opts.SessionTTL, clock: opts.Clock, cop: http.NewCrossOriginProtection()}
	if a.ttl == 0 {
		a.ttl = DefaultSessionTTL
	}
	if a.ttl < 0 {
		return nil, errors.New("auth: negative session TTL")
	}
	if a.clock == nil {
		a.clock = time.Now
	}
	a.key = opts.SessionKey
	if a.key == nil {
		a.key = make([]byte, 32)
		_, _ = rand.Read(a.key)
	}
	if len(a.key) < 32 {
		return nil, errors.New("auth: the session key must have at least 32 bytes")
	}
	var errs []error
	names := map[string]bool{}
	for i, t := range opts.Tokens {
		where := fmt.Sprintf("token %d (%s)", i+1, t.Name)
		if t.Name == "" || strings.ContainsAny(t.Name, ".\x00") || len(t.Name) > 128 {
			errs = append(errs, fmt.Errorf("%s: a name is required, up to 128 bytes without '.'", where))
		}
		if names[t.Name] {
			errs = append(errs, fmt.Errorf("%s: the name is used twice", where))
		}
		names[t.Name] = true
		h, err := hex.DecodeString(strings.ToLower(strings.TrimPrefix(t.SHA256, "sha256:")))
		if err != nil || len(h) != sha256.Size {
			errs = append(errs, fmt.Errorf("%s: sha256 must be 64 hex digits, the hash of the token (whenthen history token prints one)", where))
			continue
		}
		if len(t.Workspaces) == 0 {
			errs = append(errs, fmt.Errorf("%s: no workspaces (list them, or \"*\" for all)", where))
		}
		e := entry{Principal: Principal{Name: t.Name, ws: map[string]bool{}}, hash: h}
		for _, ws := range t.Workspaces {
			switch ws {
			case AllWorkspaces:
				e.all = true
			case NoWorkspace:
				e.ws[""] = true
			default:
				e.ws[ws] = true
			}
		}
		a.tokens = append(a.tokens, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return a, nil
}

// NewToken returns a new random token and its hash, for the
// configuration.
func NewToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Hash(token)
}

// Hash returns the hex SHA-256 of a token, as the configuration holds it.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Check returns the principal of token, comparing its hash with every
// configured one in constant time.
func (a *Auth) Check(token string) (*Principal, bool) {
	if token == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	var found *entry
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].hash) == 1 {
			found = &a.tokens[i]
		}
	}
	if found == nil {
		return nil, false
	}
	p := found.Principal
	return &p, true
}

// Bearer returns the principal of the request's `Authorization: Bearer`
// token, if any.
func (a *Auth) Bearer(r *http.Request) (*Principal, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	return a.Check(strings.TrimSpace(tok))
}

// Request returns the principal of a request: its bearer token, else its
// session cookie.
func (a *Auth) Request(r *http.Request) (*Principal, bool) {
	if p, ok := a.Bearer(r); ok {
		return p, true
	}
	return a.Session(r)
}

// sessionMAC is the HMAC of a session for the token with hash h.
func (a *Auth) sessionMAC(name string, exp int64, h []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	fmt.Fprintf(m, "whenthen-session\x00%s\x00%d\x00", name, exp)
	m.Write(h)
	return m.Sum(nil)
}

// Session returns the principal of the request's session cookie, if it
// is valid: not expired, its token still configured with the same hash.
func (a *Auth) Session(r *http.Request) (*Principal, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return nil, false
	}
	nameB, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	mac, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || a.clock().Unix() >= exp {
		return nil, false
	}
	name := string(nameB)
	for i := range a.tokens {
		e := &a.tokens[i]
		if e.Name == name && hmac.Equal(mac, a.sessionMAC(name, exp, e.hash)) {
			p := e.Principal
			return &p, true
		}
	}
	return nil, false
}

// SetSession signs p in: it sets the session cookie.
func (a *Auth) SetSession(w http.ResponseWriter, r *http.Request, p *Principal) {
	var h []byte
	for i := range a.tokens {
		if a.tokens[i].Name == p.Name {
			h = a.tokens[i].hash
		}
	}
	exp := a.clock().Add(a.ttl).Unix()
	v := base64.RawURLEncoding.EncodeToString([]byte(p.Name)) + "." + strconv.FormatInt(exp, 10) + "." +
		base64.RawURLEncoding.EncodeToString(a.sessionMAC(p.Name, exp, h))
	http.SetCookie(w, a.cookie(r, SessionCookie, v, int(a.ttl/time.Second)))
}

// ClearSession signs the request's session out.
func (a *Auth) ClearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, a.cookie(r, SessionCookie, "", -1))
}

func (a *Auth) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: !Loopback(r.Host)}
}

// Loopback reports whether host (host or host:port) names this machine
// only: localhost, 127.0.0.0/8 or ::1. Cookies are Secure everywhere
// else, where the page must be served over HTTPS.
func Loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CSRFToken returns the request's CSRF token for a form, setting its
// cookie when the request has none.
func (a *Auth) CSRFToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(CSRFCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, a.cookie(r, CSRFCookie, v, 0))
	return v
}

// ErrForbidden is returned by CheckForm for a forged form post.
var ErrForbidden = errors.New("auth: forbidden")

// CheckForm refuses a form post that comes from another origin or whose
// CSRF field does not match its cookie. It parses the form.
func (a *Auth) CheckForm(r *http.Request) error {
	if err := a.cop.Check(r); err != nil {
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	c, err := r.Cookie(CSRFCookie)
	if err != nil || len(c.Value) < 32 {
		return fmt.Errorf("%w: no CSRF cookie (reload the page and try again)", ErrForbidden)
	}
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get(CSRFField)), []byte(c.Value)) != 1 {
		return fmt.Errorf("%w: the form's CSRF token does not match (reload the page and try again)", ErrForbidden)
	}
	return nil
}
