package delivery_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestReceiverFailures delivers one action to each of several receivers
// that misbehave, each a destination of its own, and checks every outcome,
// attempt log and dead letter.
func TestReceiverFailures(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect to another host was followed")
	}))
	defer other.Close()
	hooks, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: must(webhook.ParseSecrets(hookSecret)),
		Respond: func(r *http.Request, _ *sink.Request) int {
			mu.Lock()
			calls[r.URL.Path]++
			n := calls[r.URL.Path]
			mu.Unlock()
			switch r.URL.Path {
			case "/500-then-ok":
				if n == 1 {
					return 500
				}
			case "/429":
				if n == 1 {
					return 429 // Retry-After set below, by the wrapper
				}
			case "/hang":
				<-r.Context().Done()
				return 200
			case "/422":
				return 422
			case "/409":
				return 409
			}
			return 0
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer hooks.Close()
	// A front that adds Retry-After to the 429, redirects, and closes the
	// first connection of /close-then-ok before answering; the rest goes
	// to the sink.
	var closed sync.Once
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/429":
			w.Header().Set("Retry-After", "1")
		case "/redirect":
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
			return
		case "/close-then-ok":
			first := false
			closed.Do(func() { first = true })
			if first {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
		}
		hooks.ServeHTTP(w, r)
	}))
	defer front.Close()
	refused := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()

	cases := []struct {
		name, url, typ string
		status, reason string
		attempts       int
		httpStatus     int
		errHas         string
		dead           bool
	}{
		{"500-then-ok", front.URL + "/500-then-ok", "flow", actions.StatusDelivered, "", 2, 200, "", false},
		{"429", front.URL + "/429", "flow", actions.StatusDelivered, "", 2, 200, "", false},
		{"hang", front.URL + "/hang", "flow", actions.StatusFailed, delivery.ReasonExpired, 0, 0, "timeout", true},
		{"422", front.URL + "/422", "brief", actions.StatusFailed, delivery.ReasonRejected, 1, 422, "HTTP 422", true},
		{"409-flow", front.URL + "/409", "flow", actions.StatusDelivered, actions.ReasonAlreadyEnrolled, 1, 409, "", false},
		{"409-brief", front.URL + "/409", "brief", actions.StatusFailed, delivery.ReasonRejected, 1, 409, "HTTP 409", true},
		{"redirect", front.URL + "/redirect", "flow", actions.StatusFailed, delivery.ReasonRejected, 1, 0, "redirect not followed: to another host", true},
		{"refused", refused, "flow", actions.StatusFailed, delivery.ReasonExpired, 0, 0, "connection refused", true},
		{"close-then-ok", front.URL + "/close-then-ok", "flow", actions.StatusDelivered, "", 2, 200, "", false},
	}
	var cfg strings.Builder
	cfg.WriteString("destinations:\n")
	for _, c := range cases {
		// Those that must give up do so after 1.5s; the others have time
		// to succeed on a loaded machine.
		maxAge := "20s"
		if c.reason == delivery.ReasonExpired {
			maxAge = "1500ms"
		}
		fmt.Fprintf(&cfg, "  - {name: %s, workspaces: [%s], webhook: {url: %q, secret_env: HOOK_SECRET}, timeout: 300ms, max_age: %s, retry: {initial: 50ms, max: 200ms}}\n",
			c.name, c.name, c.url, maxAge)
	}
	w := newWorld(t, cfg.String(), nil)
	var acts []actions.Action
	for _, c := range cases {
		if c.typ == "flow" {
			acts = append(acts, flowAction(c.name, "a-flow", "evt-"+c.name, "f", "P-1", "", ""))
		} else {
			acts = append(acts, briefAction(c.name, "a-brief", "evt-"+c.name, "account", "A-1", "email:x@example.com"))
		}
	}
	w.produce(acts...)
	outs := w.waitOutcomes(len(cases), 20*time.Second)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := outs[acts[i].ActionID+"/"+c.name]
			if o.Status != c.status || o.Reason != c.reason || o.HTTPStatus != c.httpStatus {
				t.Fatalf("outcome %s/%s http %d, want %s/%s %d: %+v", o.Status, o.Reason, o.HTTPStatus, c.status, c.reason, c.httpStatus, o)
			}
			if c.attempts > 0 && o.Attempts != c.attempts {
				t.Errorf("%d attempts, want %d: %+v", o.Attempts, c.attempts, o.AttemptLog)
			}
			if c.attempts == 0 && o.Attempts < 2 {
				t.Errorf("%d attempts, want it retried until max_age", o.Attempts)
			}
			if len(o.AttemptLog) != o.Attempts {
				t.Errorf("attempt log of %d for %d attempts", len(o.AttemptLog), o.Attempts)
			}
			if c.errHas != "" && !strings.Contains(o.Error, c.errHas) {
				t.Errorf("error %q, want it to say %q", o.Error, c.errHas)
			}
			if strings.Contains(o.Error, "127.0.0.1") && strings.Contains(o.Error, "/"+c.name) {
				t.Errorf("the error quotes the URL: %s", o.Error)
			}
			if c.name == "429" {
				gap := o.AttemptLog[1].At.Sub(o.AttemptLog[0].At)
				if gap < 950*time.Millisecond {
					t.Errorf("the second attempt came %v after the 429, want the Retry-After of 1s", gap)
				}
			}
			if o.Attempts > 1 && o.DurationMS < o.AttemptLog[len(o.AttemptLog)-1].At.Sub(o.AttemptLog[0].At).Milliseconds() {
				t.Errorf("duration %d ms, shorter than from the first attempt to the last", o.DurationMS)
			}
		})
	}
	dead := map[string]string{}
	for _, m := range w.kafka.ReadTopic(t, actions.DefaultDLQTopic) {
		if testenv.Header(m, actions.HeaderDLQReason) != delivery.DLQReasonFailed {
			t.Errorf("dead letter reason %q", testenv.Header(m, actions.HeaderDLQReason))
		}
		dead[testenv.Header(m, actions.HeaderSourceTopic)+" "+testenv.Header(m, actions.HeaderDLQDetail)] = string(m.Value)
	}
	for i, c := range cases {
		found := false
		for k, v := range dead {
			if strings.Contains(k, "destination "+c.name+":") && strings.HasPrefix(k, actions.DefaultActionsTopic+" ") &&
				strings.Contains(v, acts[i].ActionID) {
				found = true
			}
		}
		if found != c.dead {
			t.Errorf("%s: dead-lettered %v, want %v (%v)", c.name, found, c.dead, dead)
		}
	}
	if got := testenv.Metric(t, w.svc.Gatherer(), "whenthen_deliveries_total", "destination", "422", "status", "failed", "reason", "rejected"); got != 1 {
		t.Errorf("whenthen_deliveries_total{422,failed,rejected} = %v", got)
	}
	if got := testenv.Metric(t, w.svc.Gatherer(), "whenthen_delivery_retries_total", "destination", "500-then-ok"); got != 1 {
		t.Errorf("whenthen_delivery_retries_total{500-then-ok} = %v", got)
	}
}
