package delivery_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery/sink"
	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestRecoveryAfterACrash leaves in Redis what a deliverer killed at two
// moments leaves there, with its lease run out, and starts a new one: a
// job whose final mark was written (killed after the receiver's answer
// and the mark) gets its outcome from the mark and is not sent again; a
// job without one (killed between the call and the mark: the documented
// window) is sent again, with the same webhook-id.
func TestRecoveryAfterACrash(t *testing.T) {
	hooks, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: must(webhook.ParseSecrets(hookSecret))})
	if err != nil {
		t.Fatal(err)
	}
	defer hooks.Close()
	cfg := fmt.Sprintf("destinations:\n  - {name: hook, workspaces: [acme], webhook: {url: %q, secret_env: HOOK_SECRET}}\n", hooks.URL())
	marked := flowAction("acme", "f", "evt-marked", "flow", "P-1", "", "")
	unmarked := flowAction("acme", "f", "evt-unmarked", "flow", "P-2", "", "")
	w := newWorld(t, cfg, nil)
	ctx := context.Background()
	tag := w.prefix + "{d:hook}:"
	now := time.Now()
	past := now.Add(-time.Minute).UnixMilli()
	// The mark first: the deliverer already runs, and claims a job as
	// soon as it is queued (queued before its mark, the marked job could
	// be claimed, found unmarked and sent again).
	w.rdb.Set(ctx, tag+"f:"+marked.ActionID, fmt.Sprintf("delivered||1|200|35|%d", past), time.Hour)
	for _, a := range []actions.Action{marked, unmarked} {
		err := w.rdb.HSet(ctx, tag+"j:"+a.ActionID, "a", string(a.AppendJSON(nil)), "k", a.Key(), "s", "automations.actions/0/7",
			"e", past, "n", 1, "f", past, "l", fmt.Sprintf(`[{"at":"%s","duration_ms":35,"http_status":200}]`, time.UnixMilli(past).UTC().Format(time.RFC3339Nano)),
			"t", "dead-process").Err()
		if err != nil {
			t.Fatal(err)
		}
		// The lease has run out: the job is due.
		w.rdb.ZAdd(ctx, tag+"q", redisZ(float64(past), a.ActionID))
		w.rdb.ZAdd(ctx, tag+"age", redisZ(float64(past), a.ActionID))
	}
	outs := w.waitOutcomes(2, 10*time.Second)

	mo := outs[marked.ActionID+"/hook"]
	if mo.Status != actions.StatusDelivered || mo.Attempts != 1 || mo.HTTPStatus != 200 || mo.DurationMS != 35 ||
		mo.At.UnixMilli() != past || !strings.Contains(mo.Detail, "final mark") {
		t.Errorf("outcome of the marked job %+v", mo)
	}
	uo := outs[unmarked.ActionID+"/hook"]
	if uo.Status != actions.StatusDelivered || uo.Attempts != 2 || len(uo.AttemptLog) != 2 {
		t.Errorf("outcome of the unmarked job %+v", uo)
	}
	reqs := hooks.Received()
	if len(reqs) != 1 || reqs[0].ID != unmarked.ActionID || reqs[0].Attempt != "2" {
		t.Fatalf("calls %+v, want one: the unmarked job, attempt 2", reqs)
	}
	for _, a := range []actions.Action{marked, unmarked} {
		if n := w.rdb.Exists(ctx, tag+"j:"+a.ActionID).Val(); n != 0 {
			t.Errorf("job %s still in Redis", a.ActionID)
		}
	}
	if n := w.rdb.ZCard(ctx, tag+"q").Val() + w.rdb.ZCard(ctx, tag+"age").Val(); n != 0 {
		t.Errorf("%d queue entries left", n)
	}
}

// TestDryRunAndReload: a dry_run destination records what it would send;
// a bad config is refused with its positions and the old one stays; a
// good one adds a destination that takes the next actions.
func TestDryRunAndReload(t *testing.T) {
	hooks, err := sink.NewWebhook("127.0.0.1:0", sink.WebhookOptions{Secrets: must(webhook.ParseSecrets(hookSecret))})
	if err != nil {
		t.Fatal(err)
	}
	defer hooks.Close()
	dry := fmt.Sprintf("destinations:\n  - {name: dry, workspaces: [acme], dry_run: true, webhook: {url: %q, secret_env: HOOK_SECRET}}\n", hooks.URL()+"/dry")
	w := newWorld(t, dry, nil)
	a1 := flowAction("acme", "f", "evt-1", "flow", "P-1", "", "")
	w.produce(a1)
	o := w.waitOutcomes(1, 10*time.Second)[a1.ActionID+"/dry"]
	if o.Status != actions.StatusDryRun || o.Attempts != 0 || !strings.HasPrefix(o.Detail, "would POST ") || !strings.HasSuffix(o.Detail, "(flow) to "+hooks.URL()+"/dry") {
		t.Errorf("dry-run outcome %+v", o)
	}
	if hooks.Count() != 0 {
		t.Errorf("a dry_run destination was called")
	}

	w.writeConfig(dry + "  - {name: Bad}\n")
	err = w.svc.Reload()
	if err == nil || !strings.Contains(err.Error(), "deliver.yaml:3:5: destination Bad: invalid name") {
		t.Fatalf("Reload of a bad config: %v", err)
	}
	if got := testenv.Metric(t, w.svc.Gatherer(), "whenthen_delivery_config_reloads_total", "result", "failure"); got != 1 {
		t.Errorf("reload failures %v", got)
	}
	w.writeConfig(dry + fmt.Sprintf("  - {name: live, workspaces: [acme], webhook: {url: %q, secret_env: HOOK_SECRET}}\n", hooks.URL()+"/live"))
	if err := w.svc.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := strings.Join(w.svc.Destinations(), ","); got != "dry,live" {
		t.Errorf("destinations %s", got)
	}
	a2 := flowAction("acme", "f", "evt-2", "flow", "P-2", "", "")
	w.produce(a2)
	outs := w.waitOutcomes(3, 10*time.Second)
	if o := outs[a2.ActionID+"/live"]; o.Status != actions.StatusDelivered {
		t.Errorf("outcome at the new destination %+v", o)
	}
	testenv.WaitFor(t, 5*time.Second, "the call", func() bool { return hooks.Count() == 1 })
}
