package engine

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/testenv"
	"github.com/whenthen/whenthen/rules"
)

// storesRules add cooldowns, date timers, flows without re-enrollment and
// a condition on a timestamp's zone (which the stored form turns to UTC)
// to the random rules.
const storesRules = `
automations:
  - id: cool
    when: {record: opportunity}
    if: record.amount > 100000
    fire: every_time
    then: {brief: {recipients: ["user:u-1"]}}
    cooldown: 2h
  - id: closing
    when: {date: {record: opportunity, field: close_date, offset: -24h}}
    if: record.stage != "Closed Lost"
    then: {flow: {id: closing, who: record.primary_contact_id}}
  - id: closing-day
    when: {date: {record: opportunity, field: close_date}}
    then: {flow: {id: closing-day, who: record.primary_contact_id, reenroll_after: 48h}}
  - id: utc
    when: {record: opportunity}
    if: string(record.close_date).endsWith("Z")
    then: {flow: {id: utc, who: record.primary_contact_id, reenroll_after: 1h}}
  - id: once
    when: {record: opportunity}
    if: record.stage == "Negotiation"
    fire: every_time
    then: {flow: {id: once, who: record.primary_contact_id}}
`

// TestMemoryDecidesAsRedis: the same random stream replayed on
// store.Memory and on store.Redis (a single Redis in both key layouts,
// and a Redis Cluster) gives the same runs and actions, in the same
// order: record state read back, dedup of redelivered events,
// enrollments, cooldowns and date timers.
func TestMemoryDecidesAsRedis(t *testing.T) {
	ctx := context.Background()
	for seed := int64(1); seed <= 3; seed++ {
		r := rand.New(rand.NewSource(seed))
		c, err := rules.NewCompiler(rules.CompilerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		srcs := append(randomRules(r, 40, []string{"", "acme"}), rules.Source{Name: "stores.yaml", Data: []byte(storesRules)})
		set, err := c.Compile(srcs)
		if err != nil {
			t.Fatal(err)
		}
		rdb, prefix := testenv.Redis(t)
		opts := store.Options{Schema: c.Schema()}
		red, err := store.NewRedis(rdb, prefix, opts)
		if err != nil {
			t.Fatal(err)
		}
		layout, err := store.NewRedis(rdb, prefix+"layout:", store.Options{Schema: c.Schema(), ClusterLayout: true})
		if err != nil {
			t.Fatal(err)
		}
		crdb, cprefix := testenv.RedisClusterClient(t)
		cluster, err := store.NewRedis(crdb, cprefix, opts)
		if err != nil {
			t.Fatal(err)
		}
		mem, err := store.NewMemory(opts)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"memory", "redis", "redis in the cluster layout", "redis cluster"}
		var replays []*Replay
		for _, st := range []Store{mem, red, layout, cluster} {
			rp, err := NewReplay(Options{Rules: set, Schema: c.Schema(), Store: st})
			if err != nil {
				t.Fatal(err)
			}
			replays = append(replays, rp)
		}
		now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		var sent []*Event
		total := 0
		compare := func(step string, run func(*Replay) ([]*Output, error)) {
			t.Helper()
			got := make([]string, len(replays))
			for i, rp := range replays {
				outs, err := run(rp)
				if err != nil {
					t.Fatalf("seed %d, %s: %v", seed, step, err)
				}
				var lines []string
				for _, o := range outs {
					lines = append(lines, summarize(o)...)
				}
				total += len(lines)
				got[i] = strings.Join(lines, "\n")
			}
			for i := 1; i < len(got); i++ {
				if got[i] != got[0] {
					t.Fatalf("seed %d, %s:\n%s:\n%s\nmemory:\n%s", seed, step, names[i], got[i], got[0])
				}
			}
		}
		for i := 0; i < 400; i++ {
			now = now.Add(time.Duration(r.Intn(180)) * time.Minute)
			var ev *Event
			if len(sent) > 0 && r.Intn(8) == 0 {
				ev = sent[r.Intn(len(sent))] // redelivered, maybe late (stale)
			} else {
				ws := ""
				if r.Intn(3) == 0 {
					ws = "acme"
				}
				ev = storesEvent(r, c.Schema(), i, ws, now)
				sent = append(sent, ev)
			}
			compare(fmt.Sprintf("event %d (%s %s)", i, ev.ID, ev.Type), func(rp *Replay) ([]*Output, error) { return rp.Event(ctx, ev) })
		}
		compare("until the end", func(rp *Replay) ([]*Output, error) { return rp.Until(ctx, now.AddDate(1, 0, 0)) })
		if total == 0 {
			t.Fatalf("seed %d: no runs at all; the stream tests nothing", seed)
		}
	}
}

// storesEvent is a random opportunity event at now: created, updated
// (full, with a before, or partial) or deleted, with a close date in a
// random zone.
func storesEvent(r *rand.Rand, schema *crm.Schema, i int, ws string, now time.Time) *Event {
	ev := randomEvent(r, schema, i, ws, 12)
	ev.Time = now
	opp := ev.Record.Object()
	id := ev.Record.ID()
	zone := time.FixedZone("", (r.Intn(5)-2)*3600)
	close := now.Add(time.Duration(r.Intn(96)) * time.Hour).In(zone).Format(time.RFC3339)
	patch := map[string]any{"id": id}
	switch r.Intn(4) {
	case 0:
		patch["close_date"] = close
	case 1:
		patch["close_date"] = nil
	}
	p, err := opp.NewRecord(patch, crm.Limits{})
	if err != nil {
		panic(err)
	}
	ev.Record = ev.Record.Merge(p)
	switch r.Intn(10) {
	case 0:
		ev.Type = TypeRecordDeleted
	case 1, 2:
		ev.Partial = true
		ev.Record = p
	case 3:
		ev.Before = p
	}
	return ev
}
