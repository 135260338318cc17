package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whenthen/whenthen/delivery/webhook"
)

// The Standard Webhooks test vector, as its reference libraries check it.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignatureMatchesTheReferenceVector(t *testing.T) {
	s, err := webhook.ParseSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := webhook.Signature(s, vectorID, vectorTS, []byte(vectorBody)); got != vectorSig {
		t.Fatalf("signature %s, want %s", got, vectorSig)
	}
	h := http.Header{}
	webhook.Sign(h, []webhook.Secret{s}, vectorID, time.Unix(vectorTS, 0), []byte(vectorBody))
	if h.Get("webhook-signature") != vectorSig || h.Get("webhook-id") != vectorID || h.Get("webhook-timestamp") != "1614265330" {
		t.Fatalf("headers %v", h)
	}
}

func TestVerify(t *testing.T) {
	cur, _ := webhook.ParseSecret("whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNA==")
	old, _ := webhook.ParseSecret("a-raw-secret-of-enough-bytes")
	other, _ := webhook.ParseSecret("another-raw-secret-of-enough-bytes")
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	body := []byte(`{"type":"flow.enroll"}`)
	signed := func(secrets ...webhook.Secret) http.Header {
		h := http.Header{}
		webhook.Sign(h, secrets, "a-1", now, body)
		return h
	}
	for _, tc := range []struct {
		name    string
		secrets []webhook.Secret
		h       http.Header
		body    []byte
		now     time.Time
		want    error
	}{
		{"good", []webhook.Secret{cur}, signed(cur), body, now, nil},
		{"rotation: signed with both, verified with the old", []webhook.Secret{old}, signed(cur, old), body, now, nil},
		{"wrong secret", []webhook.Secret{other}, signed(cur), body, now, webhook.ErrNoMatch},
		{"body changed", []webhook.Secret{cur}, signed(cur), []byte(`{"type":"flow.enrolL"}`), now, webhook.ErrNoMatch},
		{"too old", []webhook.Secret{cur}, signed(cur), body, now.Add(6 * time.Minute), webhook.ErrTimestamp},
		{"from the future", []webhook.Secret{cur}, signed(cur), body, now.Add(-6 * time.Minute), webhook.ErrTimestamp},
		{"no headers", []webhook.Secret{cur}, http.Header{}, body, now, webhook.ErrMissingHeaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := webhook.Verify(tc.secrets, tc.h, tc.body, tc.now, 0); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{vectorSecret, ""},
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw==", "whsec_ is not followed by base64"},
		{"whsec_c2hvcnQ=", "5 bytes of key, want at least 16"},
		{"short", "5 bytes, want at least 16"},
		{"", "empty"},
	} {
		_, err := webhook.ParseSecrets(tc.in)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseSecrets(%q): %v, want %q", tc.in, err, tc.err)
		}
	}
	s, _ := webhook.ParseSecret(vectorSecret)
	if strings.Contains(s.String(), "MfKQ") {
		t.Errorf("String shows the key: %s", s)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Tue, 24 Nov 2026 10:00:30 GMT": 30 * time.Second,
		"Tue, 24 Nov 2026 09:00:00 GMT": 0,
	} {
		if got := webhook.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func post(t *testing.T, c *webhook.Client, url string, timeout time.Duration) webhook.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(`{"x":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(ctx, req)
}

// TestClientPolicy runs the client against real servers on loopback
// that misbehave in each way the policy names.
func TestClientPolicy(t *testing.T) {
	c := webhook.NewClient(webhook.ClientOptions{MaxResponseBytes: 16, NoProxy: true,
		ResponseHeaderTimeout: 300 * time.Millisecond})
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other host was called: %s %s", r.Method, r.URL)
	}))
	defer other.Close()
	var redirectedBody atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100))
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	mux.HandleFunc("/429", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "12")
		w.WriteHeader(429)
	})
	mux.HandleFunc("/422", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(422) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/302", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/307", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		redirectedBody.Store(r.Method + " " + string(b))
	})
	hangStop := make(chan struct{})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hangStop:
		}
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		buf.Flush()
		conn.Close()
	})
	mux.HandleFunc("/close-before-status", func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(hangStop) // before srv.Close, which waits for handlers
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr + "/"
	}()

	for _, tc := range []struct {
		path       string
		status     int
		ok         bool
		retryable  bool
		retryAfter time.Duration
		errHas     string
	}{
		{path: "/ok", status: 200, ok: true},
		{path: "/500", status: 500, retryable: true, errHas: "HTTP 500"},
		{path: "/429", status: 429, retryable: true, retryAfter: 12 * time.Second, errHas: "HTTP 429"},
		{path: "/422", status: 422, errHas: "HTTP 422"},
		{path: "/away", errHas: "redirect not followed: to another host"},
		{path: "/302", status: 302, errHas: "redirect not followed"},
		{path: "/307", status: 200, ok: true},
		{path: "/hang", retryable: true, errHas: "timeout"},
		{path: "/close", status: 200, ok: true},
		{path: "/close-before-status", retryable: true, errHas: "EOF"},
		{path: "refused", retryable: true, errHas: "connection refused"},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			url := srv.URL + tc.path
			if tc.path == "refused" {
				url = refused
			}
			r := post(t, c, url, 2*time.Second)
			if r.Status != tc.status || r.OK() != tc.ok || r.Retryable != tc.retryable || r.RetryAfter != tc.retryAfter {
				t.Fatalf("got status %d ok %v retryable %v retry-after %v (err %v)", r.Status, r.OK(), r.Retryable, r.RetryAfter, r.Err)
			}
			if tc.errHas != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tc.errHas)) {
				t.Fatalf("error %v, want it to say %q", r.Err, tc.errHas)
			}
			if r.Err != nil && strings.Contains(r.Err.Error(), "127.0.0.1:"+strings.Split(srv.URL, ":")[2]+tc.path) {
				t.Errorf("the error quotes the URL: %v", r.Err)
			}
			if tc.path == "/ok" && len(r.Body) != 16 {
				t.Errorf("body of %d bytes, want it capped at 16", len(r.Body))
			}
		})
	}
	if got, _ := redirectedBody.Load().(string); got != `POST {"x":1}` {
		t.Errorf("the 307 was followed with %q, want the same POST and body", got)
	}
}
