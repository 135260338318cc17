// Package email sends briefs by SMTP ([Sender]: STARTTLS or implicit TLS,
// verified, AUTH PLAIN, a deadline on the whole transaction) and resolves
// user ids to addresses ([Directory]: a YAML or CSV file, or an HTTP
// lookup with a cache).
package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes of SMTPOptions.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// SMTPOptions configure a [Sender].
type SMTPOptions struct {
	Host string
	Port int
	// TLS is starttls (the server must offer it), tls or none.
	TLS string
	// Username and Password authenticate with AUTH PLAIN, only over TLS.
	Username, Password string
	// RootCAs verify the server; nil for the system roots. Verification is
	// never turned off.
	RootCAs *x509.CertPool
}

// Sender sends messages through one SMTP server, a connection per message.
type Sender struct {
	o    SMTPOptions
	addr string
}

// NewSender returns a sender of o.
func NewSender(o SMTPOptions) (*Sender, error) {
	if o.Host == "" || o.Port <= 0 {
		return nil, errors.New("email: SMTP host and port are required")
	}
	switch o.TLS {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if o.Username != "" {
			return nil, errors.New("email: no authentication without TLS")
		}
	default:
		return nil, fmt.Errorf("email: TLS mode %q", o.TLS)
	}
	return &Sender{o: o, addr: net.JoinHostPort(o.Host, strconv.Itoa(o.Port))}, nil
}

// Message is one email.
type Message struct {
	From      string // "Name <addr>" or "addr"
	To        []string
	Subject   string
	Text      string
	MessageID string            // without angle brackets
	Headers   map[string]string // extra headers (X-...)
	Date      time.Time
}

// Result is what sending one message came to.
type Result struct {
	// Accepted are the recipients the server took.
	Accepted []string
	// Refused maps recipients refused for good (5xx) to the reply.
	Refused map[string]string
	// Err is nil once the message was accepted for Accepted.
	Err error
	// Retryable tells whether the whole message may go later (timeouts,
	// connection errors, 4xx replies).
	Retryable bool
}

// Send delivers m within ctx's deadline (the connection's deadline for
// every command). A recipient the server refuses for good is left out and
// listed in Refused; a temporary refusal of any recipient makes the whole
// message retryable (nothing is sent), so that no one gets it twice.
func (s *Sender) Send(ctx context.Context, m Message) Result {
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return Result{Err: fmt.Errorf("from address: %w", err)}
	}
	data, err := m.bytes(from)
	if err != nil {
		return Result{Err: err}
	}
	dialer := &net.Dialer{}
	conn, err := dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return Result{Err: netError(ctx, err), Retryable: true}
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tlsCfg := &tls.Config{ServerName: s.o.Host, RootCAs: s.o.RootCAs, MinVersion: tls.VersionTLS12}
	var c *smtp.Client
	switch s.o.TLS {
	case TLSImplicit:
		c = smtp.NewClient(tls.Client(conn, tlsCfg))
		s.timeouts(ctx, c)
		err = c.Hello("localhost")
	case TLSStartTLS:
		// NewClientStartTLS fails when the server does not offer STARTTLS:
		// the message is never sent in the clear.
		c, err = smtp.NewClientStartTLS(conn, tlsCfg)
		if c != nil {
			s.timeouts(ctx, c)
		}
	default:
		c = smtp.NewClient(conn)
		s.timeouts(ctx, c)
		err = c.Hello("localhost")
	}
	if err != nil {
		conn.Close()
		if strings.Contains(err.Error(), "doesn't support STARTTLS") {
			return Result{Err: errors.New("the server does not offer STARTTLS")}
		}
		return classify(ctx, "hello", err)
	}
	defer c.Close()
	if s.o.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.o.Username, s.o.Password)); err != nil {
			return classify(ctx, "auth", err)
		}
	}
	if err := c.Mail(from.Address, nil); err != nil {
		return classify(ctx, "MAIL FROM", err)
	}
	res := Result{Refused: map[string]string{}}
	for _, to := range m.To {
		err := c.Rcpt(to, nil)
		if err == nil {
			res.Accepted = append(res.Accepted, to)
			continue
		}
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			res.Refused[to] = fmt.Sprintf("%d %s", se.Code, oneLine(se.Message))
			continue
		}
		_ = c.Reset()
		r := classify(ctx, "RCPT TO", err)
		r.Refused = res.Refused
		return r
	}
	if len(res.Accepted) == 0 {
		_ = c.Quit()
		res.Err = errors.New("every recipient was refused")
		return res
	}
	w, err := c.Data()
	if err != nil {
		r := classify(ctx, "DATA", err)
		r.Refused = res.Refused
		return r
	}
	if _, err := w.Write(data); err != nil {
		r := classify(ctx, "DATA", err)
		r.Refused = res.Refused
		return r
	}
	if err := w.Close(); err != nil {
		r := classify(ctx, "DATA", err)
		r.Refused = res.Refused
		return r
	}
	_ = c.Quit()
	return res
}

// timeouts bounds every command of c by ctx's deadline (go-smtp sets a
// deadline of its own on each command otherwise, 5 minutes).
func (s *Sender) timeouts(ctx context.Context, c *smtp.Client) {
	if d, ok := ctx.Deadline(); ok {
		left := max(time.Until(d), time.Millisecond)
		c.CommandTimeout, c.SubmissionTimeout = left, left
	}
}

// classify turns an SMTP step's error into a Result: a 4xx reply or a
// connection problem is retryable, a 5xx reply is not.
func classify(ctx context.Context, step string, err error) Result {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return Result{Err: fmt.Errorf("%s: %d %s", step, se.Code, oneLine(se.Message)), Retryable: se.Code < 500}
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return Result{Err: fmt.Errorf("%s: %w", step, err), Retryable: true}
	}
	return Result{Err: fmt.Errorf("%s: %w", step, netError(ctx, err)), Retryable: true}
}

func netError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.New("timeout: the SMTP transaction did not finish within the destination's timeout")
	}
	return err
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// bytes renders the message: RFC 5322 headers, a quoted-printable UTF-8
// text body.
func (m *Message) bytes(from *mail.Address) ([]byte, error) {
	var b bytes.Buffer
	h := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	h("From", from.String())
	to := make([]string, 0, len(m.To))
	for _, a := range m.To {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %w", a, err)
		}
		to = append(to, addr.String())
	}
	h("To", strings.Join(to, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", headerSafe(m.Subject)))
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h("Date", date.Format(time.RFC1123Z))
	if m.MessageID != "" {
		h("Message-ID", "<"+headerSafe(m.MessageID)+">")
	}
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated")
	for k, v := range m.Headers {
		h(k, mime.QEncoding.Encode("utf-8", headerSafe(v)))
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// headerSafe removes what could end a header line.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}
