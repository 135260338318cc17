package sink_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
)

func TestWebhookSinkVerifies(t *testing.T) {
	secrets, _ := webhook.ParseSecrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	other, _ := webhook.ParseSecrets("another-raw-secret-of-enough-bytes")
	got := make(chan sink.Request, 2)
	s, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: secrets, OnReceive: func(r sink.Request) { got <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		secrets []webhook.Secret
		status  int
	}{{secrets, 200}, {other, 401}} {
		body := []byte(`{"type":"flow.enroll"}`)
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/flows", bytes.NewReader(body))
		webhook.Sign(req.Header, tc.secrets, "a-1", time.Now(), body)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		r := <-got
		if res.StatusCode != tc.status || r.Status != tc.status || r.ID != "a-1" || r.Path != "/flows" || (r.SigErr == nil) != (tc.status == 200) {
			t.Errorf("answered %d, recorded %+v; want %d", res.StatusCode, r, tc.status)
		}
	}
	if s.Count() != 2 || len(s.Received()) != 2 {
		t.Errorf("count %d, received %d", s.Count(), len(s.Received()))
	}
}

func TestSMTPSinkRequiresTLSAndAuth(t *testing.T) {
	cfg, certPEM, err := sink.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.NewSMTP("127.0.0.1:0", sink.SMTPOptions{TLS: cfg, Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.com", nil); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("MAIL before STARTTLS: %v", err)
	}
	c.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	if err := smtp.SendMailTLS(s.Addr(), nil, "a@example.com", []string{"b@example.com"}, strings.NewReader("x")); err == nil {
		t.Error("implicit TLS to a STARTTLS server worked")
	}
	conn, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Mail("a@example.com", nil); err == nil {
		t.Error("MAIL without AUTH accepted")
	}
}
