// Package gen generates realistic CRM workloads: rule sets of any size
// over any number of workspaces, and event streams that match them as
// revenue teams' data does. The benchmark suite (package bench, `whenthen
// bench`) and the benchmarks and tests of other packages use it; it
// imports nothing of whenthen but rules.Source, so that they do not link
// the suite.
package gen

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/whenthen/whenthen/rules"
)

// Workload describes a generated rule set and event stream.
type Workload struct {
	// Automations in all; spread evenly over Workspaces (at least 1).
	Automations int
	Workspaces  int
	// Seed makes the workload reproducible.
	Seed int64
	// Fanout makes the rules unselective (FanoutRules): at 10k
	// automations in one workspace an event matches about 25 of them,
	// as a schedule tick over many records or a tracker's fan-out does.
	// The events are the same.
	Fanout bool
}

// Categorical values of the generated CRM data, of varying cardinality.
var (
	stages     = []string{"Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"}
	oppTypes   = []string{"New Business", "Renewal", "Upsell", "Cross-sell", "Services"}
	forecasts  = []string{"Pipeline", "Best Case", "Commit", "Closed", "Omitted"}
	tiers      = []string{"SMB", "Mid-Market", "Enterprise", "Strategic"}
	sources    = []string{"web", "webinar", "event", "referral", "partner", "outbound", "ads", "content", "trial", "other"}
	leadStatus = []string{"new", "working", "nurturing", "qualified", "unqualified"}
)

func industries() []string { return numbered("Industry", 50) }
func countries() []string  { return numbered("C", 100) }
func regions() []string    { return numbered("R", 20) }
func trackers() []string   { return numbered("Tracker ", 40) }

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// WorkspaceName is the name of generated workspace i.
func WorkspaceName(i int) string { return fmt.Sprintf("ws-%04d", i) }

// NumWorkspaces is how many workspaces the workload spreads its
// automations over: Workspaces, at least 1.
func (w Workload) NumWorkspaces() int {
	if w.Workspaces < 1 {
		return 1
	}
	return w.Workspaces
}

// scale is the size of the high-cardinality pools (owners, accounts):
// ten per automation of a workspace, so that each automation matches a
// small share of events and about 1% of events fire something whatever
// the rule set's size.
func (w Workload) scale() int {
	return max(1000, 10*w.Automations/w.NumWorkspaces())
}

// Rules generates the automation files, one per workspace. The mix
// follows what revenue teams write: stage and amount milestones on the
// deals of an owner or an account, tier and industry rules on accounts,
// source, country and score rules on leads, change conditions, trackers
// and a few date triggers. Most rules are scoped to an owner or an
// account, as real rule sets of this size are.
func (w Workload) Rules() []rules.Source {
	if w.Fanout {
		return w.FanoutRules()
	}
	inds, ctry, regs, trks := industries(), countries(), regions(), trackers()
	scale := w.scale()
	return w.generate("a", func(r *rand.Rand, pick func([]string) string) (when, cond, then string) {
		switch k := r.Intn(100); {
		case k < 30: // an owner's deal milestones
			when = "{record: opportunity}"
			cond = fmt.Sprintf(`record.owner_id == "u-%d" && record.stage == %q && record.amount > %d`, r.Intn(scale), pick(stages), 50000*(1+r.Intn(20)))
			then = "{brief: {kind: opportunity, recipients: [owner]}}"
		case k < 40: // an account's deal desk
			when = "{record: opportunity, on: [updated]}"
			cond = fmt.Sprintf(`record.account_id == "acc-%d" && record.forecast_category in [%q, %q] && record.probability >= 0.%d`, r.Intn(scale), pick(forecasts), pick(forecasts), 5+r.Intn(5))
			then = "{flow: {id: deal-desk, who: record.primary_contact_id}}"
		case k < 45: // change conditions
			when = "{record: opportunity, on: [updated]}"
			cond = fmt.Sprintf(`"stage" in changed && record.account_id == "acc-%d" && before.stage != "Closed Lost"`, r.Intn(scale))
			then = "{brief: {kind: opportunity}}"
		case k < 60: // accounts
			when = "{record: account}"
			cond = fmt.Sprintf(`record.industry == %q && record.region == %q && record.tier in [%q, %q] && record.employee_count > %d`, pick(inds), pick(regs), pick(tiers), pick(tiers), 100*r.Intn(50))
			then = "{flow: {id: abm, who: record.primary_contact_id}}"
		case k < 63:
			when = "{record: account}"
			cond = fmt.Sprintf(`record.owner_id == "u-%d" && record.annual_revenue >= %d.0`, r.Intn(scale), 1000000*(1+r.Intn(50)))
			then = "{brief: {kind: account}}"
		case k < 83: // leads
			when = "{record: lead}"
			cond = fmt.Sprintf(`record.source == %q && record.country == %q && record.score >= %d`, pick(sources), pick(ctry), 50+r.Intn(50))
			then = "{flow: {id: nurture}}"
		case k < 88:
			when = "{record: lead, on: [updated]}"
			cond = fmt.Sprintf(`record.owner_id == "u-%d" && record.status == %q && record.email.endsWith("@example.com")`, r.Intn(scale), pick(leadStatus))
			then = "{flow: {id: sdr}}"
		case k < 93: // trackers
			when = fmt.Sprintf("{tracker: {name: %q, min_confidence: 0.%d}}", pick(trks), 5+r.Intn(5))
			cond = fmt.Sprintf(`account.tier == %q && account.id == "001-%d"`, pick(tiers), r.Intn(scale))
			then = `{flow: {id: expansion, who: 'tracker.participants.filter(p, p.role == "customer").map(p, p.contact_id)'}}`
		case k < 98: // contacts
			when = "{record: contact}"
			cond = fmt.Sprintf(`record.account_id == "acc-%d" && record.title.startsWith("VP")`, r.Intn(scale))
			then = "{flow: {id: exec-welcome}}"
		default: // date triggers
			when = fmt.Sprintf("{date: {record: account, field: renewal_date, offset: -%dh}}", 24*(30+r.Intn(60)))
			cond = fmt.Sprintf(`record.tier == %q`, pick(tiers))
			then = "{flow: {id: renewal, who: record.primary_contact_id}}"
		}
		return when, cond, then
	})
}

// FanoutRules generates automation files, one per workspace, whose
// conditions test only low-cardinality fields (stage, forecast category,
// tier, region, lead source and status, title, a threshold): a record
// meets hundreds of candidates in its index bucket and matches tens of
// them. With 10,000 automations in a workspace and Events' stream: an
// opportunity event matches about 18, an account 25, a lead 20, a contact
// 60, a tracker detection 9 and a schedule firing 50 (about 23 on
// average); the counts scale with the automations per workspace.
func (w Workload) FanoutRules() []rules.Source {
	regs, trks := regions(), trackers()
	return w.generate("f", func(r *rand.Rand, pick func([]string) string) (when, cond, then string) {
		switch k := r.Intn(100); {
		case k < 45: // pipeline rules: a stage, a forecast, a deal type, a size
			when = "{record: opportunity}"
			cond = fmt.Sprintf(`record.stage == %q && record.forecast_category == %q && record.type == %q && record.amount > %d`, pick(stages), pick(forecasts), pick(oppTypes), 50000*r.Intn(20))
			then = "{flow: {id: pipeline, who: record.primary_contact_id}}"
		case k < 65: // account segments
			when = "{record: account}"
			cond = fmt.Sprintf(`record.tier == %q && record.region == %q`, pick(tiers), pick(regs))
			then = "{flow: {id: segment, who: record.primary_contact_id}}"
		case k < 85: // lead routing
			when = "{record: lead}"
			cond = fmt.Sprintf(`record.source == %q && record.status == %q && record.score >= %d`, pick(sources), pick(leadStatus), r.Intn(100))
			then = "{flow: {id: route}}"
		case k < 88: // contacts by title
			when = "{record: contact}"
			cond = fmt.Sprintf(`record.title == %q && record.email.endsWith("@example.com")`, pick([]string{"VP Sales", "CFO", "Engineer", "VP Engineering", "Analyst"}))
			then = "{flow: {id: persona}}"
		case k < 95: // a tracker's fan-out
			when = fmt.Sprintf("{tracker: {name: %q}}", pick(trks))
			cond = fmt.Sprintf(`account.tier in [%q, %q]`, pick(tiers), pick(tiers))
			then = `{flow: {id: follow-up, who: 'tracker.participants.filter(p, p.role == "customer").map(p, p.contact_id)'}}`
		case k < 98: // a schedule tick over many records
			when = "{schedule: {name: weekly-pipeline-review, record: opportunity}}"
			cond = fmt.Sprintf(`record.stage == %q`, pick(stages))
			then = "{brief: {kind: opportunity}}"
		default: // date triggers
			when = fmt.Sprintf("{date: {record: account, field: renewal_date, offset: -%dh}}", 24*(30+r.Intn(60)))
			cond = fmt.Sprintf(`record.tier == %q`, pick(tiers))
			then = "{flow: {id: renewal, who: record.primary_contact_id}}"
		}
		return when, cond, then
	})
}

// generate writes the automation files, one per workspace, the ids of
// whose automations are wWS-KIND<i>; rule draws each automation's when,
// if and then from r, one after the other, so that a seed always gives
// the same files.
func (w Workload) generate(kind string, rule func(r *rand.Rand, pick func([]string) string) (when, cond, then string)) []rules.Source {
	r := rand.New(rand.NewSource(w.Seed))
	nws := w.NumWorkspaces()
	per := w.Automations / nws
	pick := func(s []string) string { return s[r.Intn(len(s))] }
	var srcs []rules.Source
	for ws := 0; ws < nws; ws++ {
		var b strings.Builder
		fmt.Fprintf(&b, "workspace: %s\nautomations:\n", WorkspaceName(ws))
		for i := 0; i < per; i++ {
			when, cond, then := rule(r, pick)
			fmt.Fprintf(&b, "  - id: w%d-%s%d\n    when: %s\n    if: '%s'\n    then: %s\n", ws, kind, i, when, strings.ReplaceAll(cond, "'", "''"), then)
		}
		srcs = append(srcs, rules.Source{Name: fmt.Sprintf("%s.yaml", WorkspaceName(ws)), Data: []byte(b.String())})
	}
	return srcs
}

// Events generates n event envelopes (docs/events.md) as JSON, about 600 bytes each for
// opportunities: 45% opportunity, 20% account, 20% lead, 8% contact
// updates and creates, 5% tracker detections, 2% schedule firings.
// Records repeat (updates of the same records), times increase.
func (w Workload) Events(n int) [][]byte {
	r := rand.New(rand.NewSource(w.Seed + 1))
	nws := w.NumWorkspaces()
	inds, ctry, regs, trks := industries(), countries(), regions(), trackers()
	scale := w.scale()
	pick := func(s []string) string { return s[r.Intn(len(s))] }
	owner := func() string { return fmt.Sprintf("u-%d", r.Intn(scale)) }
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		ws := WorkspaceName(r.Intn(nws))
		t := t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		typ := "record.updated"
		if r.Intn(10) == 0 {
			typ = "record.created"
		}
		var body string
		switch k := r.Intn(100); {
		case k < 45:
			body = fmt.Sprintf(`"object":"opportunity","record":{"id":"006-%d","name":"Acme renewal %d","account_id":"acc-%d","stage":%q,"type":%q,"forecast_category":%q,"amount":%d,"probability":%.1f,"close_date":"2027-0%d-15T00:00:00Z","owner_id":%q,"primary_contact_id":"003-%d","created_at":"2026-01-01T00:00:00Z","updated_at":%q},"before":{"stage":%q,"amount":%d}`,
				r.Intn(50000), i, r.Intn(scale), pick(stages), pick(oppTypes), pick(forecasts), 1000*r.Intn(1200), float64(r.Intn(11))/10, 1+r.Intn(9), owner(), r.Intn(20000), t, pick(stages), 1000*r.Intn(1200))
		case k < 65:
			acc := r.Intn(5000) // renewal dates belong to the account: they rarely change
			body = fmt.Sprintf(`"object":"account","record":{"id":"001-%d","name":"Account %d","tier":%q,"industry":%q,"region":%q,"annual_revenue":%d,"employee_count":%d,"renewal_date":"2027-%02d-01T00:00:00Z","primary_contact_id":"003-%d","owner_id":%q}`,
				acc, i, pick(tiers), pick(inds), pick(regs), 100000*r.Intn(600), r.Intn(5000), 1+acc%12, r.Intn(20000), owner())
		case k < 85:
			body = fmt.Sprintf(`"object":"lead","record":{"id":"00Q-%d","email":"p%d@example.com","first_name":"Pat","last_name":"Lee","company":"Co %d","status":%q,"source":%q,"country":%q,"score":%d,"owner_id":%q}`,
				r.Intn(100000), i, i, pick(leadStatus), pick(sources), pick(ctry), r.Intn(101), owner())
		case k < 93:
			body = fmt.Sprintf(`"object":"contact","record":{"id":"003-%d","email":"c%d@example.com","first_name":"Sam","last_name":"Ray","title":%q,"account_id":"acc-%d","phone":"+1 555 0100"}`,
				r.Intn(20000), i, pick([]string{"VP Sales", "CFO", "Engineer", "VP Engineering", "Analyst"}), r.Intn(scale))
		case k < 98:
			typ = "tracker.detected"
			body = fmt.Sprintf(`"tracker":{"name":%q,"call_id":"call-%d","confidence":%.2f,"participants":[{"contact_id":"003-%d","role":"customer","name":"A"},{"contact_id":"003-%d","role":"customer","name":"B"},{"contact_id":"u-%d","role":"rep","name":"R"}]},"account":{"id":"001-%d","tier":%q}`,
				pick(trks), i, r.Float64(), r.Intn(20000), r.Intn(20000), r.Intn(1000), r.Intn(scale), pick(tiers))
		default:
			typ = "schedule.fired"
			body = fmt.Sprintf(`"schedule":{"name":"weekly-pipeline-review"},"object":"opportunity","record":{"id":"006-%d","stage":%q,"updated_at":"2026-10-01T00:00:00Z"}`, r.Intn(50000), pick(stages))
		}
		out[i] = []byte(fmt.Sprintf(`{"id":"evt-%d","type":%q,"time":%q,"workspace":%q,%s}`, i, typ, t, ws, body))
	}
	return out
}

// WriteRules writes the workload's automation files into dir.
func (w Workload) WriteRules(dir string) error {
	for _, src := range w.Rules() {
		if err := os.WriteFile(filepath.Join(dir, src.Name), src.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
