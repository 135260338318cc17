// Package sink holds local receivers of deliveries, for `whenthen dev`,
// the benchmarks and the tests: a Standard Webhooks HTTP receiver that
// verifies every signature ([Webhook]) and an SMTP server with STARTTLS
// and AUTH PLAIN ([SMTP]), both on a loopback address, both keeping what
// they received and telling an optional callback.
package sink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/whenthen/whenthen/delivery/webhook"
)

// Request is one webhook call received.
type Request struct {
	At      time.Time
	Path    string
	Header  http.Header
	Body    []byte
	ID      string // webhook-id
	Status  int    // what the sink answered
	SigErr  error  // nil when the signature verified
	Attempt string // whenthen-attempt
}

// WebhookOptions configure a [Webhook] sink.
type WebhookOptions struct {
	// Secrets verify the signatures; a request that does not verify is
	// answered 401.
	Secrets []webhook.Secret
	// Respond, if set, chooses the answer to a verified request: its
	// status (0 for 200). It may block (a slow receiver) until the
	// request's context is done.
	Respond func(r *http.Request, req *Request) int
	// OnReceive, if set, is called with every request after it is
	// answered.
	OnReceive func(Request)
	// Keep bounds the requests kept for Received; default 100,000.
	Keep int
}

// Webhook is a Standard Webhooks receiver on 127.0.0.1.
type Webhook struct {
	o   WebhookOptions
	srv *http.Server
	ln  net.Listener

	mu   sync.Mutex
	reqs []Request
	n    int
}

// NewWebhook starts a webhook sink on addr (127.0.0.1:0 for a free port).
func NewWebhook(addr string, o WebhookOptions) (*Webhook, error) {
	if o.Keep <= 0 {
		o.Keep = 100_000
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	w := &Webhook{o: o, ln: ln}
	w.srv = &http.Server{Handler: w, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

// URL is the sink's base URL, http://127.0.0.1:PORT.
func (w *Webhook) URL() string { return "http://" + w.ln.Addr().String() }

// ServeHTTP receives one call.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return
	}
	req := Request{At: time.Now(), Path: r.URL.Path, Header: r.Header.Clone(), Body: body,
		ID: r.Header.Get(webhook.HeaderID), Attempt: r.Header.Get("whenthen-attempt")}
	req.SigErr = webhook.Verify(w.o.Secrets, r.Header, body, req.At, 0)
	status := http.StatusOK
	if req.SigErr != nil {
		status = http.StatusUnauthorized
	} else if w.o.Respond != nil {
		if s := w.o.Respond(r, &req); s != 0 {
			status = s
		}
	}
	req.Status = status
	rw.WriteHeader(status)
	w.mu.Lock()
	w.n++
	if len(w.reqs) < w.o.Keep {
		w.reqs = append(w.reqs, req)
	}
	w.mu.Unlock()
	if w.o.OnReceive != nil {
		w.o.OnReceive(req)
	}
}

// Received returns the requests received so far (at most Keep).
func (w *Webhook) Received() []Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Request(nil), w.reqs...)
}

// Count is how many requests arrived.
func (w *Webhook) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Close stops the sink.
func (w *Webhook) Close() error {
	err := w.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Mail is one message an SMTP sink accepted.
type Mail struct {
	At   time.Time
	From string
	To   []string
	Data []byte
	TLS  bool // the session ran over TLS (STARTTLS)
	User string
}

// Header returns the value of a header of the message (the first), ""
// if absent.
func (m Mail) Header(name string) string {
	head, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// SMTPOptions configure an [SMTP] sink.
type SMTPOptions struct {
	// TLS, if set, offers STARTTLS with this certificate and refuses MAIL
	// before it (see SelfSigned).
	TLS *tls.Config
	// Username and Password, if set, require AUTH PLAIN with them.
	Username, Password string
	// Refuse, if set, is asked for each recipient: a non-nil error (an
	// *smtp.SMTPError) refuses it.
	Refuse func(to string) error
	// OnReceive, if set, is called with every accepted message.
	OnReceive func(Mail)
}

// SMTP is an SMTP server on 127.0.0.1 that keeps what it accepts.
type SMTP struct {
	o   SMTPOptions
	srv *smtp.Server
	ln  net.Listener

	mu    sync.Mutex
	mails []Mail
}

// NewSMTP starts an SMTP sink on addr (127.0.0.1:0 for a free port).
func NewSMTP(addr string, o SMTPOptions) (*SMTP, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &SMTP{o: o, ln: ln}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = o.TLS
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 4 << 20
	s.srv.MaxRecipients = 100
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the sink's host:port.
func (s *SMTP) Addr() string { return s.ln.Addr().String() }

// Mails returns the messages accepted so far.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Close stops the sink.
func (s *SMTP) Close() error { return s.srv.Close() }

// NewSession implements smtp.Backend.
func (s *SMTP) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, c: c}, nil
}

type session struct {
	s    *SMTP
	c    *smtp.Conn
	user string
	mail Mail
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.o.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.o.Username || password != ss.s.o.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) tls() bool {
	_, ok := ss.c.TLSConnectionState()
	return ok
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.o.TLS != nil && !ss.tls() {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if ss.s.o.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.mail = Mail{From: from, TLS: ss.tls(), User: ss.user}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.o.Refuse != nil {
		if err := ss.s.o.Refuse(to); err != nil {
			return err
		}
	}
	ss.mail.To = append(ss.mail.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := ss.mail
	m.Data, m.At = b, time.Now()
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, m)
	ss.s.mu.Unlock()
	if ss.s.o.OnReceive != nil {
		ss.s.o.OnReceive(m)
	}
	return nil
}

func (ss *session) Reset()        { ss.mail = Mail{} }
func (ss *session) Logout() error { return nil }

// SelfSigned returns a server TLS config with a fresh self-signed ECDSA
// certificate for 127.0.0.1, ::1 and localhost, valid for a day, and the
// certificate in PEM, for the client to trust (a CA file).
func SelfSigned() (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "whenthen sink"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certPEM, nil
}
