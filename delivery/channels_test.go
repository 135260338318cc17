package delivery_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestSlackAndRecipients posts a brief to a Slack-compatible webhook
// (its URL a secret from the environment, record values escaped so they
// cannot mention a channel), and skips an email brief whose recipients
// are all unknown.
func TestSlackAndRecipients(t *testing.T) {
	var mu sync.Mutex
	var posts []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, r.URL.Path+" "+string(b))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer slack.Close()
	cfg := `
destinations:
  - {name: sales-slack, workspaces: [acme], slack: {url_env: SLACK_URL}}
  - name: mail
    workspaces: [globex]
    email: {smtp: {host: 127.0.0.1, port: 1, tls: none}, from: "w <w@example.com>", directory: {file: "{{DIR}}/users.yaml"}}
`
	w := newWorld(t, cfg, func(o *delivery.Options) {
		writeFile(t, filepath.Dir(o.ConfigFile)+"/users.yaml", "users:\n  - {id: u-1, email: one@example.com}\n")
		env := o.Env
		o.Env = func(k string) string {
			if k == "SLACK_URL" {
				return slack.URL + "/services/T000/SECRET-TOKEN"
			}
			return env(k)
		}
	})
	w.save("acme", "account", map[string]any{"id": "A-1", "name": "Acme <!channel> & co", "tier": "Enterprise"})
	sl := briefAction("acme", "acct-brief", "evt-1", "account", "A-1", "user:u-7")
	none := briefAction("globex", "acct-brief", "evt-2", "account", "A-2", "user:u-404", "user:u-405")
	w.produce(sl, none)
	outs := w.waitOutcomes(2, 10*time.Second)

	if o := outs[sl.ActionID+"/sales-slack"]; o.Status != actions.StatusDelivered || o.HTTPStatus != 200 ||
		strings.Contains(o.Detail, "SECRET-TOKEN") || strings.Contains(o.Detail, slack.URL) {
		t.Errorf("slack outcome %+v", o)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	path, body, _ := strings.Cut(posts[0], " ")
	var msg struct{ Text string }
	if err := json.Unmarshal([]byte(body), &msg); err != nil || path != "/services/T000/SECRET-TOKEN" {
		t.Fatalf("post %s (%v)", posts[0], err)
	}
	if !strings.HasPrefix(msg.Text, "*Acme &lt;!channel&gt; &amp; co*\n\n") || strings.Contains(msg.Text, "<!channel>") ||
		!strings.Contains(msg.Text, "tier: Enterprise") || !strings.HasSuffix(msg.Text, "_For: user:u-7_") {
		t.Errorf("text %q", msg.Text)
	}
	o := outs[none.ActionID+"/mail"]
	if o.Status != actions.StatusSkipped || o.Reason != actions.ReasonNoRecipients || o.Attempts != 0 ||
		o.Detail != "no recipient left; unknown, skipped: user:u-404, user:u-405" {
		t.Errorf("outcome without recipients %+v", o)
	}
	if got := testenv.Metric(t, w.svc.Gatherer(), "whenthen_deliveries_total", "destination", "mail", "status", "skipped", "reason", "no_recipients"); got != 1 {
		t.Errorf("whenthen_deliveries_total{mail,skipped,no_recipients} = %v", got)
	}
}
