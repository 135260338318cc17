package check_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/history/check"
	historystore "github.com/whenthen/whenthen/history/store"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// examples returns the compiler and rule set of examples/ and testdata/.
func examples(t *testing.T) (*rules.Compiler, *rules.Set) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "examples")
	schema, err := crm.LoadSchema(filepath.Join(root, "schema.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rules.NewCompiler(rules.CompilerOptions{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := rules.ReadFiles(filepath.Join(root, "automations"), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.Compile(srcs)
	if err != nil {
		t.Fatal(err)
	}
	return c, set
}

func TestCheck(t *testing.T) {
	compiler, set := examples(t)
	rdb, prefix := testenv.Redis(t)
	live, err := store.NewRedis(rdb, prefix, store.Options{Schema: compiler.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	save := func(object, js string) {
		t.Helper()
		obj, ok := compiler.Schema().Object(object)
		if !ok {
			t.Fatalf("no object %s", object)
		}
		rec, err := obj.DecodeRecord([]byte(js), crm.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		err = live.Apply(context.Background(), &store.Writes{Saves: []store.Save{{
			Ref: store.RecordRef{Workspace: "acme", Object: object, ID: rec.ID()}, Snapshot: store.Snapshot{Record: rec, Time: now.Add(-time.Hour)}}}}, now)
		if err != nil {
			t.Fatal(err)
		}
	}
	save("opportunity", `{"id":"O-small","stage":"Closed Won","amount":150000,"owner_id":"u-7"}`)
	save("opportunity", `{"id":"O-big","stage":"Closed Won","amount":265000,"owner_id":"u-7"}`)
	c := check.New(func() (*rules.Compiler, *rules.Set) { return compiler, set }, live, func() time.Time { return now }, nil)

	for _, tc := range []struct {
		name, automation, record string
		wouldRun                 bool
		reason                   string
		clauses                  []bool
	}{
		{"condition false", "closed-won-brief", "O-small", false, "condition_false", []bool{true, false}},
		// on_enter: the condition holds on the record as it is, so an
		// update that leaves it so does not enter it.
		{"on_enter already held", "closed-won-brief", "O-big", false, "already_true", []bool{true, true}},
		{"on_enter, the other clause false", "negotiation-brief", "O-small", false, "condition_false", []bool{false, false}},
		{"every_time would run", "big-deal-every-time", "O-big", true, "", []bool{true, true}},
		{"disabled", "paused-brief", "O-big", false, "disabled", nil},
		{"no state", "closed-won-brief", "O-unknown", false, check.ReasonNoRecord, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Check(context.Background(), "acme", tc.automation, "", tc.record)
			if err != nil {
				t.Fatal(err)
			}
			if res.WouldRun != tc.wouldRun || res.Reason != tc.reason || res.Detail == "" {
				t.Fatalf("result %+v: want would_run %v, reason %q", res, tc.wouldRun, tc.reason)
			}
			var got []bool
			if res.Condition != nil {
				for _, cl := range res.Condition.Clauses {
					got = append(got, cl.Result != nil && *cl.Result)
				}
			}
			if !slices.Equal(got, tc.clauses) {
				t.Fatalf("clauses %v, want %v", got, tc.clauses)
			}
		})
	}
	res, err := c.Check(context.Background(), "acme", "closed-won-brief", "opportunity", "O-small")
	if err != nil {
		t.Fatal(err)
	}
	amount := res.Condition.Clauses[1]
	if amount.Text != "record.amount > 200000" || len(amount.Values) != 1 || amount.Values[0].Field != "record.amount" || string(amount.Values[0].Value) != "150000" {
		t.Fatalf("the amount clause: %+v", amount)
	}
	if res.StateTime == nil || !res.StateTime.Equal(now.Add(-time.Hour)) || res.Event.Type != "record.updated" {
		t.Fatalf("state time %v, event %+v", res.StateTime, res.Event)
	}

	// Errors: another workspace's automation, a wrong object, no Redis.
	if _, err := c.Check(context.Background(), "globex", "closed-won-brief", "", "O-big"); !errors.Is(err, check.ErrNoAutomation) {
		t.Fatalf("another workspace: %v", err)
	}
	var pe *historystore.ParamError
	if _, err := c.Check(context.Background(), "acme", "closed-won-brief", "lead", "O-big"); !errors.As(err, &pe) || pe.Param != "object" {
		t.Fatalf("wrong object: %v", err)
	}
	if _, err := c.Check(context.Background(), "acme", "closed-won-brief", "", ""); !errors.As(err, &pe) || pe.Param != "record" {
		t.Fatalf("no record: %v", err)
	}
	none := check.New(func() (*rules.Compiler, *rules.Set) { return compiler, set }, nil, nil, nil)
	if _, err := none.Check(context.Background(), "acme", "closed-won-brief", "", "O-big"); !errors.Is(err, check.ErrUnavailable) {
		t.Fatalf("without Redis: %v", err)
	}
}

func TestFieldsRead(t *testing.T) {
	for expr, want := range map[string][]string{
		`record.stage == "Closed Won" && record.amount > 200000`:    {"record.stage", "record.amount"},
		`"owner_id" in changed && record.owner_id != ""`:            {"record.owner_id"},
		`has(record.region_code) && account.tier in ["Enterprise"]`: {"record.region_code", "account.tier"},
		`tracker.participants.filter(p, p.role == "x").size() > 0`:  {"tracker.participants"},
		`now - record.updated_at > duration("336h")`:                {"record.updated_at"},
		`record.stage == before.stage || record.stage == "x"`:       {"record.stage", "before.stage"},
		`record.`: nil,
	} {
		if got := check.FieldsRead(expr); !slices.Equal(got, want) {
			t.Errorf("FieldsRead(%q) = %v, want %v", expr, got, want)
		}
	}
}
