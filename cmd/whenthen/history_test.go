package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/history/store/storetest"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestHistoryCommands starts `whenthen history` (the service, from its
// flags and environment) on each store, fills it through Kafka, and
// reads it back with `whenthen history runs` and `whenthen history run`.
func TestHistoryCommands(t *testing.T) {
	for name, db := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "h.db") },
		"postgres": func(t *testing.T) string { return testenv.Postgres(t) },
	} {
		t.Run(name, func(t *testing.T) { testHistoryCommands(t, db(t)) })
	}
}

func testHistoryCommands(t *testing.T, db string) {
	cluster := testenv.Kafka(t, actions.DefaultRunsTopic, actions.DefaultActionsTopic, actions.DefaultOutcomesTopic, actions.DefaultDLQTopic)
	token, hash := auth.NewToken()
	addr := testenv.FreeAddr(t)
	var stderr testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	svcEnv := &cmdEnv{stdout: &testenv.Buffer{}, stderr: &stderr, getenv: func(k string) string {
		// The database from the environment, the rest from flags.
		if k == "WHENTHEN_HISTORY_DB" {
			return db
		}
		return ""
	}}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, svcEnv, []string{"history", "--kafka-brokers", strings.Join(cluster.Addrs(), ","),
			"--history-listen", addr, "--history-token", "revops-acme:" + hash + ":acme",
			"--rules", "../../examples/automations", "--schema", "../../examples/schema.yaml", "--log-level", "warn"})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("whenthen history exited %d: %s", code, stderr.String())
		}
	}()

	now := time.Now().UTC()
	won := storetest.NewRun("acme", "closed-won-brief", "evt-0012", "opportunity", "O-2001", now.Add(-time.Hour), "completed", "")
	act := storetest.ActionOf(won)
	out := storetest.OutcomeOf(act, "revops-email", actions.StatusFailed, now)
	skipped := storetest.NewRun("acme", "closed-won-brief", "evt-0013", "opportunity", "O-2001", now.Add(-time.Minute), "skipped", "cooldown")
	old := storetest.NewRun("acme", "closed-won-brief", "evt-old", "opportunity", "O-2001", now.Add(-48*time.Hour), "completed", "")
	outJSON, _ := json.Marshal(out)
	cluster.Produce(t, actions.DefaultRunsTopic, kafka.Message{Key: []byte("O-2001"), Value: won.AppendJSON(nil)},
		kafka.Message{Key: []byte("O-2001"), Value: skipped.AppendJSON(nil)}, kafka.Message{Key: []byte("O-2001"), Value: old.AppendJSON(nil)})
	cluster.Produce(t, actions.DefaultActionsTopic, kafka.Message{Key: []byte("O-2001"), Value: act.AppendJSON(nil)})
	cluster.Produce(t, actions.DefaultOutcomesTopic, kafka.Message{Key: []byte(act.ActionID), Value: outJSON})

	client := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		env := &cmdEnv{stdout: &o, stderr: &e, getenv: func(k string) string {
			if k == "WHENTHEN_HISTORY_TOKEN" {
				return token
			}
			return ""
		}}
		code := run(context.Background(), env, append([]string{"history"}, append(args, "--url", "http://"+addr)...))
		return code, o.String(), e.String()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, stdout, _ := client("runs", "--workspace", "acme", "--automation", "closed-won-brief", "--since", "24h", "--format", "json")
		var got struct{ Runs []store.Run }
		if code == 0 && json.Unmarshal([]byte(stdout), &got) == nil && len(got.Runs) == 2 && got.Runs[1].Status == store.StatusDeliveryFailed {
			if got.Runs[0].RunID != skipped.RunID || got.Runs[1].RunID != won.RunID {
				t.Fatalf("runs %+v", got.Runs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runs did not show up: exit %d %s; service log: %s", code, stdout, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	code, stdout, errs := client("runs", "--workspace", "acme", "--automation", "closed-won-brief", "--since", "24h", "--outcome", "skipped")
	if code != 0 || !strings.Contains(stdout, skipped.RunID) || strings.Contains(stdout, won.RunID) || !strings.Contains(stdout, "cooldown") ||
		!strings.HasPrefix(stdout, "RAN AT (UTC)") {
		t.Fatalf("runs --outcome skipped: exit %d\n%s%s", code, stdout, errs)
	}
	code, stdout, _ = client("runs", "--workspace", "acme", "--since", "72h")
	if code != 0 || !strings.Contains(stdout, old.RunID) {
		t.Fatalf("runs --since 72h lacks the old run: %s", stdout)
	}
	code, stdout, errs = client("run", won.RunID, "--workspace", "acme")
	for _, want := range []string{"run " + won.RunID + " of closed-won-brief in acme", "delivery_failed", `record.stage == "Closed Won"`,
		"record.amount = 250000", "revops-email failed after 3 attempt(s)", "dial tcp: i/o timeout"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("run lacks %q: exit %d\n%s%s", want, code, stdout, errs)
		}
	}
	code, stdout, _ = client("run", won.RunID, "--workspace", "acme", "--format", "json")
	var d store.RunDetail
	if code != 0 || json.Unmarshal([]byte(stdout), &d) != nil || len(d.Actions) != 1 || len(d.Actions[0].Outcomes) != 1 {
		t.Fatalf("run --format json: %d %s", code, stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", won.RunID, "--workspace", "globex"}, 1, "not found"},
		{[]string{"run", "r-nope", "--workspace", "acme"}, 1, "not found"},
		{[]string{"runs", "--workspace", "acme", "--outcome", "done"}, 1, "outcome"},
		{[]string{"runs", "--workspace", "acme", "--token", "wth_wrong"}, 1, "does not know this token"},
		{[]string{"runs"}, 2, "--workspace is required"},
		{[]string{"runs", "--workspace", "acme", "--format", "xml"}, 2, "--format"},
	} {
		code, _, errs := client(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d %q, want %d %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %v %v", res, err)
	}
	res.Body.Close()
}

func TestHistoryToken(t *testing.T) {
	code, out, errs := runCmd(t, "history", "token", "--name", "revops-acme", "--workspaces", "acme,~")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var tok, hash string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "token:  "); ok {
			tok = v
		}
		if v, ok := strings.CutPrefix(line, "sha256: "); ok {
			hash = v
		}
	}
	if !strings.HasPrefix(tok, auth.TokenPrefix) || auth.Hash(tok) != hash ||
		!strings.Contains(out, fmt.Sprintf(`- {name: revops-acme, sha256: %s, workspaces: ["acme", "~"]}`, hash)) {
		t.Fatalf("token output:\n%s", out)
	}
	// Two runs, two tokens.
	_, out2, _ := runCmd(t, "history", "token")
	if strings.Contains(out2, tok) {
		t.Fatal("the same token twice")
	}
}

func TestHistoryConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"history", "--history-db", "mysql://x"}, "want postgres://"},
		{[]string{"history", "--history-token", "a:notahash:acme", "--history-db", "sqlite:" + filepath.Join(t.TempDir(), "x.db")}, "64 hex digits"},
		{[]string{"history", "--history-retention", "5m"}, "retention"},
		{[]string{"history", "--history-session-key", "abc"}, "session-key"},
	} {
		code, _, errs := runCmd(t, tc.args...)
		if code == 0 || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d %q, want %q", tc.args, code, errs, tc.msg)
		}
	}
}
