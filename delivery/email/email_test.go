package email_test

import (
	"context"
	"crypto/x509"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/whenthen/whenthen/delivery/email"
	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
)

func startSink(t *testing.T, o sink.SMTPOptions) (*sink.SMTP, *x509.CertPool) {
	t.Helper()
	cfg, certPEM, err := sink.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	o.TLS = cfg
	s, err := sink.NewSMTP("127.0.0.1:0", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return s, pool
}

func sender(t *testing.T, addr string, o email.SMTPOptions) *email.Sender {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	o.Host = host
	for _, c := range port {
		o.Port = o.Port*10 + int(c-'0')
	}
	if o.TLS == "" {
		o.TLS = email.TLSStartTLS
	}
	s, err := email.NewSender(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func message() email.Message {
	return email.Message{
		From: "whenthen <whenthen@example.com>", To: []string{"ana@acme.example", "revops@example.com"},
		Subject: "Closed Won: Acme — expansion", Text: "Line one.\nLine two with ü and a very long line " + strings.Repeat("x", 100) + ".\n",
		MessageID: "a-1.revops-email@whenthen", Headers: map[string]string{"X-Whenthen-Action-Id": "a-1"},
		Date: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSendOverSTARTTLSWithAuth(t *testing.T) {
	s, pool := startSink(t, sink.SMTPOptions{Username: "whenthen", Password: "pw-123"})
	r := sender(t, s.Addr(), email.SMTPOptions{Username: "whenthen", Password: "pw-123", RootCAs: pool}).Send(ctx(t), message())
	if r.Err != nil {
		t.Fatalf("Send: %v", r.Err)
	}
	mails := s.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	m := mails[0]
	if !m.TLS || m.User != "whenthen" || m.From != "whenthen@example.com" || strings.Join(m.To, ",") != "ana@acme.example,revops@example.com" {
		t.Errorf("mail %+v", m)
	}
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(m.Header("Subject"))
	if err != nil || subj != "Closed Won: Acme — expansion" {
		t.Errorf("subject %q (%v)", subj, err)
	}
	if m.Header("Message-ID") != "<a-1.revops-email@whenthen>" || m.Header("X-Whenthen-Action-Id") != "a-1" ||
		m.Header("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("headers:\n%s", m.Data)
	}
	_, body, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	text, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil || !strings.Contains(string(text), "Line two with ü") {
		t.Errorf("body %q (%v)", text, err)
	}
}

func TestSendFailures(t *testing.T) {
	s, pool := startSink(t, sink.SMTPOptions{Username: "whenthen", Password: "pw-123",
		Refuse: func(to string) error {
			switch {
			case strings.HasPrefix(to, "gone@"):
				return &smtp.SMTPError{Code: 550, Message: "no such user"}
			case strings.HasPrefix(to, "full@"):
				return &smtp.SMTPError{Code: 452, Message: "mailbox full, try later"}
			}
			return nil
		}})
	t.Run("untrusted certificate", func(t *testing.T) {
		r := sender(t, s.Addr(), email.SMTPOptions{Username: "whenthen", Password: "pw-123"}).Send(ctx(t), message())
		if r.Err == nil || !r.Retryable || !strings.Contains(r.Err.Error(), "certificate") {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		r := sender(t, s.Addr(), email.SMTPOptions{Username: "whenthen", Password: "nope", RootCAs: pool}).Send(ctx(t), message())
		if r.Err == nil || r.Retryable || !strings.Contains(r.Err.Error(), "auth: 535") {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("one recipient refused for good", func(t *testing.T) {
		m := message()
		m.To = []string{"gone@example.com", "ana@acme.example"}
		r := sender(t, s.Addr(), email.SMTPOptions{Username: "whenthen", Password: "pw-123", RootCAs: pool}).Send(ctx(t), m)
		if r.Err != nil || len(r.Accepted) != 1 || r.Refused["gone@example.com"] != "550 no such user" {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("a recipient refused for now: nothing sent", func(t *testing.T) {
		before := len(s.Mails())
		m := message()
		m.To = []string{"ana@acme.example", "full@example.com"}
		r := sender(t, s.Addr(), email.SMTPOptions{Username: "whenthen", Password: "pw-123", RootCAs: pool}).Send(ctx(t), m)
		if r.Err == nil || !r.Retryable || len(s.Mails()) != before {
			t.Errorf("result %+v, %d mails sent", r, len(s.Mails())-before)
		}
	})
	t.Run("every recipient refused", func(t *testing.T) {
		m := message()
		m.To = []string{"gone@example.com"}
		r := sender(t, s.Addr(), email.SMTPOptions{Username: "whenthen", Password: "pw-123", RootCAs: pool}).Send(ctx(t), m)
		if r.Err == nil || r.Retryable {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("no STARTTLS offered", func(t *testing.T) {
		plain, err := sink.NewSMTP("127.0.0.1:0", sink.SMTPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		r := sender(t, plain.Addr(), email.SMTPOptions{RootCAs: pool}).Send(ctx(t), message())
		if r.Err == nil || r.Retryable || !strings.Contains(r.Err.Error(), "STARTTLS") || len(plain.Mails()) != 0 {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		r := sender(t, "127.0.0.1:1", email.SMTPOptions{RootCAs: pool}).Send(ctx(t), message())
		if r.Err == nil || !r.Retryable {
			t.Errorf("result %+v", r)
		}
	})
}

func TestFileDirectory(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "users.yaml")
	os.WriteFile(yml, []byte("users:\n  - {id: u-7, email: ana@acme.example, workspace: acme}\n  - {id: u-7, email: other@example.com}\n  - {id: u-42, email: bo@example.com}\n"), 0o644)
	csvPath := filepath.Join(dir, "users.csv")
	os.WriteFile(csvPath, []byte("id,email,workspace\nu-7,ana@acme.example,acme\nu-42,bo@example.com,\n"), 0o644)
	for _, p := range []string{yml, csvPath} {
		d, err := email.LoadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, tc := range []struct {
			ws, id, want string
			found        bool
		}{
			{"acme", "u-7", "ana@acme.example", true},
			{"acme", "u-42", "bo@example.com", true},
			{"globex", "u-42", "bo@example.com", true},
			{"acme", "u-9", "", false},
		} {
			got, found, err := d.Lookup(context.Background(), tc.ws, tc.id)
			if got != tc.want || found != tc.found || err != nil {
				t.Errorf("%s: Lookup(%s, %s) = %q %v %v", filepath.Base(p), tc.ws, tc.id, got, found, err)
			}
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("id,email\nu-1,not an address\n,x@example.com\n"), 0o644)
	if _, err := email.LoadFile(bad); err == nil || !strings.Contains(err.Error(), "entry 2 (u-1): invalid email address") || !strings.Contains(err.Error(), "entry 3: no id") {
		t.Errorf("LoadFile(bad): %v", err)
	}
}

func TestHTTPDirectory(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer dir-token" {
			w.WriteHeader(401)
			return
		}
		switch r.URL.EscapedPath() {
		case "/ws/acme/users/u-7":
			io.WriteString(w, `{"email":"ana@acme.example"}`)
		case "/ws/acme/users/u%2F1":
			w.WriteHeader(500)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	d, err := email.NewHTTP(email.HTTPOptions{URL: srv.URL + "/ws/{workspace}/users/{id}", Token: "dir-token", TTL: time.Minute,
		Client: webhook.NewClient(webhook.ClientOptions{NoProxy: true}), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c := context.Background()
	for range 3 {
		if a, found, err := d.Lookup(c, "acme", "u-7"); a != "ana@acme.example" || !found || err != nil {
			t.Fatalf("u-7: %q %v %v", a, found, err)
		}
	}
	if _, found, err := d.Lookup(c, "acme", "u-9"); found || err != nil {
		t.Fatalf("u-9: %v %v", found, err)
	}
	if _, _, err := d.Lookup(c, "acme", "u/1"); err == nil {
		t.Fatal("a 500 is not an error")
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3 (u-7 cached)", n)
	}
	now = now.Add(2 * time.Minute)
	d.Lookup(c, "acme", "u-7")
	if n := calls.Load(); n != 4 {
		t.Errorf("%d calls, want 4 (the cache entry expired)", n)
	}
}
