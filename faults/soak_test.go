//go:build linux

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// soakRules are faultRules and, on accounts, a date automation (a flow
// when renewal_date comes) and a cron schedule (a brief per account every
// minute).
const soakRules = faultRules + `
  - id: renewal
    when:
      date: {record: account, field: renewal_date}
    then:
      flow: {id: renewal, who: record.primary_contact_id}
  - id: account-review
    when:
      schedule: {cron: "* * * * *", record: account}
    then:
      brief: {kind: account, recipients: [owner]}
`

const soakPartitions = 12

// TestManyInstances is the soak test of several `whenthen run` processes
// in one group: a 12-partition input topic, three instances, then, while
// events stream in, rounds of one instance SIGKILLed, one added and one
// stopped (SIGTERM) — short: one round, long: four — with date timers
// coming due and a cron schedule ticking meanwhile. It checks:
//
//   - nothing lost: every expected action id of the record events is in
//     the topic, and every commit came after the outputs it covers;
//   - no duplicate action beyond what a SIGKILL can give: an action id in
//     the topic twice must be one a claim left pending at a kill (the
//     crash between publish and commit, docs/guarantees.md);
//   - every date timer fired once: one renewal action per account;
//   - every schedule tick after the accounts were stored covers every
//     account once;
//   - after every step the group is stable with all 12 partitions owned,
//     each once, by the live instances; at the end every partition is
//     committed to its end.
func TestManyInstances(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, worldOptions{partitions: soakPartitions})
	if err := os.WriteFile(w.rules, []byte(soakRules), 0o644); err != nil {
		t.Fatal(err)
	}
	accounts := pick(240, 1200)
	wl := workload{records: pick(1000, 24000), rate: pick(250, 300), marker: "SOAKMARK"}
	// The date timers come due over the stream, so that they fire across
	// the kills and rebalances.
	streamFor := time.Duration(float64(wl.total()) / float64(wl.rate) * float64(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	live := map[string]*instance{}
	var steps []string // each step and the action records then
	step := func(what string) {
		steps = append(steps, fmt.Sprintf("%s@%d", what, w.kafka.Count(actions.DefaultActionsTopic)))
	}
	var order []string // live instances, oldest first
	var rebalances []time.Duration
	owned := func(what string) {
		t.Helper()
		t0 := time.Now()
		testenv.WaitFor(t, 60*time.Second, what+": all partitions owned by the live instances", func() bool {
			return w.allOwned(len(live))
		})
		rebalances = append(rebalances, time.Since(t0))
	}
	n := 0
	add := func() {
		name := fmt.Sprintf("I%d", n)
		n++
		live[name] = w.start(name, instanceOpts{batchSize: 100})
		step("join " + name)
		order = append(order, name)
		owned(name + " joined")
	}
	drop := func(name string) {
		delete(live, name)
		order = removeName(order, name)
	}
	for range 3 {
		add()
	}

	// The accounts first, all stored before the stream: their timers
	// armed, and the schedule's ticks from then on must cover them all.
	dueFrom := time.Now().Add(8 * time.Second)
	var accs []kafka.Message
	for i := range accounts {
		due := dueFrom.Add(time.Duration(i) * streamFor / time.Duration(accounts))
		accs = append(accs, accountMessage(i, due))
	}
	w.kafka.Produce(t, inputTopic, accs...)
	testenv.WaitFor(t, 60*time.Second, "the accounts committed", w.allCommitted)
	accountsStored := time.Now()
	t.Logf("%.1fs: %d accounts stored", time.Since(start).Seconds(), accounts)

	prod := w.produce(ctx, wl.messages(), wl.rate)
	progress := func(what string) {
		t.Helper()
		c := w.kafka.Count(actions.DefaultActionsTopic)
		testenv.WaitFor(t, 90*time.Second, what, func() bool { return w.kafka.Count(actions.DefaultActionsTopic) > c+50 })
	}
	pending := map[string]bool{} // action ids a claim held pending at a kill
	kills, joins, leaves := 0, 3, 0
	for r := range pick(1, 4) {
		progress(fmt.Sprintf("round %d: the stream moving", r))
		victim := order[r%len(order)]
		live[victim].kill()
		step("kill " + victim)
		drop(victim)
		kills++
		for _, id := range w.pendingClaims(ctx) {
			pending[id] = true
		}
		owned(victim + " killed")
		t.Logf("%.1fs: %s killed, %d claims pending, the partitions owned again", time.Since(start).Seconds(), victim, len(pending))
		progress(fmt.Sprintf("round %d: the stream moving after the kill", r))
		add()
		joins++
		progress(fmt.Sprintf("round %d: the stream moving after the join", r))
		leaving := order[0]
		step("term " + leaving)
		if !live[leaving].term(20 * time.Second) {
			t.Errorf("%s did not leave cleanly", leaving)
		}
		drop(leaving)
		leaves++
		owned(leaving + " stopped")
		add()
		joins++
	}
	prod.wait(t, 10*time.Minute)
	// A claim the killed instance left pending holds its partition for
	// the lease (30 s), after which a live instance takes it over.
	t.Logf("%.1fs: the stream produced", time.Since(start).Seconds())
	testenv.WaitFor(t, 3*time.Minute, "every event committed", w.allCommitted)
	streamDone := time.Now()
	t.Logf("%.1fs: every event committed", time.Since(start).Seconds())

	// Every timer fired, and a tick after the accounts were stored.
	// (Read every 2 s: a read of the whole topic is not cheap.)
	var tl timerLedger
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Second) {
		tl = w.readTimerActions(t)
		if len(tl.renewals) >= accounts && tl.wholeTicksAfter(accountsStored, accounts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 minutes after the stream: %d of %d date timers fired, %d whole ticks after the accounts were stored",
				len(tl.renewals), accounts, tl.wholeTicksAfter(accountsStored, accounts))
		}
	}
	t.Logf("%.1fs: every timer fired and a whole tick", time.Since(start).Seconds())
	if !w.allOwned(len(live)) {
		t.Error("at the end, the partitions are not all owned by the live instances")
	}
	for name, in := range live {
		if !in.term(20 * time.Second) {
			t.Errorf("%s did not exit cleanly", name)
		}
	}

	v := w.verify(t)
	v.check(t)
	var unexplained []string
	for id := range v.dups {
		if !pending[id] {
			unexplained = append(unexplained, id)
		}
	}
	sort.Strings(unexplained)
	if len(unexplained) > 0 {
		// Where they are: by automation, and the offsets of their copies
		// against the topic's size at each step.
		offs := map[string][]int64{}
		autoOf := map[string]string{}
		for _, m := range w.kafka.ReadTopic(t, actions.DefaultActionsTopic) {
			var a actions.Action
			_ = json.Unmarshal(m.Value, &a)
			offs[a.ActionID] = append(offs[a.ActionID], m.Offset)
			autoOf[a.ActionID] = a.AutomationID
		}
		byAuto := map[string]int{}
		for _, id := range unexplained {
			byAuto[autoOf[id]]++
		}
		var ex []string
		for _, id := range unexplained[:min(8, len(unexplained))] {
			ex = append(ex, fmt.Sprintf("%s %s at %v", autoOf[id], id, offs[id]))
		}
		t.Errorf("%d action ids produced twice that no kill left pending, by automation %v; steps (action records then): %v; e.g.\n%s",
			len(unexplained), byAuto, steps, strings.Join(ex, "\n"))
	}
	// Every timer once: one renewal action per account, none twice.
	var timersMissing, timersTwice []string
	for i := range accounts {
		id := accountID(i)
		switch ids := tl.renewals[id]; {
		case len(ids) == 0:
			timersMissing = append(timersMissing, id)
		case len(ids) > 1:
			timersTwice = append(timersTwice, id)
		}
	}
	if len(timersMissing) > 0 {
		t.Errorf("%d date timers never fired, e.g. %v", len(timersMissing), timersMissing[:min(5, len(timersMissing))])
	}
	if len(timersTwice) > 0 {
		t.Errorf("%d date timers fired more than once (different action ids), e.g. %v", len(timersTwice), timersTwice[:min(5, len(timersTwice))])
	}
	// The ticks as the topic has them once every instance stopped: each
	// after the accounts were stored is whole, but the last, which the
	// final shutdown may have cut short.
	tl = w.readTimerActions(t)
	var tickTimes []time.Time
	for tick := range tl.ticks {
		tickTimes = append(tickTimes, tick)
	}
	sort.Slice(tickTimes, func(i, j int) bool { return tickTimes[i].Before(tickTimes[j]) })
	ticks, partial, cut := len(tickTimes), 0, 0
	for i, tick := range tickTimes {
		recs := tl.ticks[tick]
		if tick.After(accountsStored) && len(recs) != accounts {
			if i == len(tickTimes)-1 {
				cut++
				continue
			}
			partial++
			t.Errorf("the tick of %s ran for %d of the %d accounts", tick.Format(time.RFC3339), len(recs), accounts)
		}
		for rec, k := range recs {
			if k > 1 && !pendingAll(pending, tl.tickIDs[tick][rec]) {
				t.Errorf("the tick of %s gave account %s %d actions", tick.Format(time.RFC3339), rec, k)
			}
		}
	}
	_, commits := w.ledger.snapshot()
	var maxReb time.Duration
	for _, d := range rebalances {
		maxReb = max(maxReb, d)
	}
	report(t, start, "partitions", soakPartitions, "instances_max", 3, "kills", kills, "joins", joins, "clean_leaves", leaves,
		"events", v.inputs, "expected_record_actions", v.expected, "actions", v.actions, "actions_lost", len(v.lost),
		"duplicate_action_ids", v.dupCount(), "duplicates_pending_at_a_kill", v.dupCount()-len(unexplained),
		"claims_pending_at_kills", len(pending), "date_timers", accounts, "date_timers_fired_once", accounts-len(timersMissing)-len(timersTwice),
		"ticks", ticks, "ticks_whole_after_accounts", tl.wholeTicksAfter(accountsStored, accounts), "ticks_partial", partial, "last_tick_cut_by_shutdown", cut,
		"rebalances", len(rebalances), "max_time_to_all_partitions_owned", maxReb.Round(100*time.Millisecond).String(),
		"all_committed_after", streamDone.Sub(start).Round(time.Second).String(),
		"commits_checked", len(commits), "commit_violations", len(v.violations), "backward_commits", v.backwards)
}

func removeName(list []string, name string) []string {
	out := list[:0]
	for _, s := range list {
		if s != name {
			out = append(out, s)
		}
	}
	return out
}

func pendingAll(pending map[string]bool, ids []string) bool {
	for _, id := range ids {
		if !pending[id] {
			return false
		}
	}
	return true
}

func accountID(i int) string { return fmt.Sprintf("acc-%d", i) }

// accountMessage is account i's record.created, its renewal date due.
func accountMessage(i int, due time.Time) kafka.Message {
	id := accountID(i)
	return kafka.Message{Key: []byte(id), Value: fmt.Appendf(nil,
		`{"id":"a%d","time":%q,"workspace":%q,"object":"account","type":"record.created",`+
			`"record":{"id":%q,"name":"SOAKMARK-acc","renewal_date":%q,"owner_id":"SOAKMARK-owner","primary_contact_id":"ac-%d"}}`,
		i, time.Now().UTC().Format(time.RFC3339Nano), workspace, id, due.UTC().Format(time.RFC3339Nano), i)}
}

// allOwned reports whether the group is stable with n members whose
// assignments cover every input partition exactly once.
func (w *world) allOwned(n int) bool {
	gi := w.kafka.GroupInfo(group)
	if gi == nil || gi.State != "Stable" || len(gi.Members) != n {
		return false
	}
	seen := map[int32]int{}
	for _, m := range gi.Members {
		for _, p := range m.Assignment[inputTopic] {
			seen[p]++
		}
	}
	if len(seen) != soakPartitions {
		return false
	}
	for _, k := range seen {
		if k != 1 {
			return false
		}
	}
	return true
}

// pendingClaims returns the action ids whose claims are pending (taken,
// not yet marked done), without changing them.
func (w *world) pendingClaims(ctx context.Context) []string {
	t := w.t
	t.Helper()
	var out []string
	iter := w.rdb.Scan(ctx, 0, prefix+"{"+workspace+"}:a:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		v, err := w.rdb.Get(ctx, k).Result()
		if err == nil && strings.HasPrefix(v, "p|") {
			out = append(out, k[strings.LastIndex(k, ":")+1:])
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan claims: %v", err)
	}
	return out
}

// timerLedger is what the date timers and the schedule produced.
type timerLedger struct {
	renewals map[string][]string               // account → distinct renewal action ids
	ticks    map[time.Time]map[string]int      // tick → account → action records
	tickIDs  map[time.Time]map[string][]string // tick → account → action ids
}

func (w *world) readTimerActions(t *testing.T) timerLedger {
	t.Helper()
	tl := timerLedger{renewals: map[string][]string{}, ticks: map[time.Time]map[string]int{}, tickIDs: map[time.Time]map[string][]string{}}
	seen := map[string]bool{}
	for _, m := range w.kafka.ReadTopic(t, actions.DefaultActionsTopic) {
		var a actions.Action
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatalf("action record %q: %v", m.Value, err)
		}
		switch a.AutomationID {
		case "renewal":
			if !seen[a.ActionID] {
				tl.renewals[a.RecordID] = append(tl.renewals[a.RecordID], a.ActionID)
			}
		case "account-review":
			tick := a.EventTime.UTC()
			if tl.ticks[tick] == nil {
				tl.ticks[tick] = map[string]int{}
				tl.tickIDs[tick] = map[string][]string{}
			}
			tl.ticks[tick][a.RecordID]++
			tl.tickIDs[tick][a.RecordID] = append(tl.tickIDs[tick][a.RecordID], a.ActionID)
		}
		seen[a.ActionID] = true
	}
	return tl
}

// wholeTicksAfter counts the ticks after from that covered n accounts.
func (tl timerLedger) wholeTicksAfter(from time.Time, n int) int {
	k := 0
	for tick, recs := range tl.ticks {
		if tick.After(from) && len(recs) == n {
			k++
		}
	}
	return k
}
