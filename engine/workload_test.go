package engine

import (
	"fmt"
	"math/rand"
	"strings"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/rules"
)

var (
	genStages   = []string{"Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"}
	genTypes    = []string{"New Business", "Renewal", "Upsell", "Cross-sell", "Services"}
	genForecast = []string{"Pipeline", "Best Case", "Commit", "Closed", "Omitted"}
)

// randomClause is one clause over an opportunity: indexable or not.
func randomClause(r *rand.Rand) string {
	switch r.Intn(9) {
	case 0:
		return fmt.Sprintf("record.stage == %q", genStages[r.Intn(len(genStages))])
	case 1:
		return fmt.Sprintf("record.stage in [%q, %q]", genStages[r.Intn(len(genStages))], genStages[r.Intn(len(genStages))])
	case 2:
		return fmt.Sprintf("%q == record.type", genTypes[r.Intn(len(genTypes))])
	case 3:
		return fmt.Sprintf("record.amount > %d", r.Intn(5)*50000)
	case 4:
		return fmt.Sprintf("record.stage != %q", genStages[r.Intn(len(genStages))])
	case 5:
		return fmt.Sprintf("record.amount == %d.0", r.Intn(3)*100000)
	case 6:
		return fmt.Sprintf("(record.forecast_category == %q || record.type == %q)", genForecast[r.Intn(len(genForecast))], genTypes[r.Intn(len(genTypes))])
	case 7:
		return fmt.Sprintf("record.probability in [0.5, %d]", r.Intn(2))
	default:
		return `"stage" in changed`
	}
}

// randomRules writes n opportunity automations with random conditions
// and fire modes, spread over the given workspaces.
func randomRules(r *rand.Rand, n int, workspaces []string) []rules.Source {
	var srcs []rules.Source
	for wi, ws := range workspaces {
		var b strings.Builder
		if ws != "" {
			fmt.Fprintf(&b, "workspace: %s\n", ws)
		}
		b.WriteString("automations:\n")
		for i := 0; i < n/len(workspaces); i++ {
			k := 1 + r.Intn(3)
			clauses := make([]string, k)
			for j := range clauses {
				clauses[j] = randomClause(r)
			}
			cond := strings.Join(clauses, " && ")
			fire := "every_time"
			if r.Intn(2) == 0 && !strings.Contains(cond, "changed") {
				fire = "on_enter"
			}
			fmt.Fprintf(&b, "  - id: w%d-a%d\n    when: {record: opportunity}\n    if: '%s'\n    fire: %s\n    then: {flow: {id: f%d, who: record.primary_contact_id, reenroll_after: 1h}}\n",
				wi, i, strings.ReplaceAll(cond, "'", "''"), fire, i%3)
		}
		srcs = append(srcs, rules.Source{Name: fmt.Sprintf("ws%d.yaml", wi), Data: []byte(b.String())})
	}
	return srcs
}

// randomEvent is an opportunity event with random field values; some
// fields absent.
func randomEvent(r *rand.Rand, schema *crm.Schema, i int, ws string, records int) *Event {
	opp, _ := schema.Object(crm.ObjOpportunity)
	m := map[string]any{"id": fmt.Sprintf("o%d", r.Intn(records)), "primary_contact_id": fmt.Sprintf("c%d", r.Intn(50))}
	if r.Intn(5) > 0 {
		m["stage"] = genStages[r.Intn(len(genStages))]
	}
	if r.Intn(5) > 0 {
		m["type"] = genTypes[r.Intn(len(genTypes))]
	}
	if r.Intn(3) > 0 {
		m["forecast_category"] = genForecast[r.Intn(len(genForecast))]
	}
	if r.Intn(4) > 0 {
		m["amount"] = float64(r.Intn(6) * 50000)
	}
	if r.Intn(2) > 0 {
		m["probability"] = []float64{0, 0.5, 1, 0.25}[r.Intn(4)]
	}
	rec, err := opp.NewRecord(m, crm.Limits{})
	if err != nil {
		panic(err)
	}
	typ := TypeRecordUpdated
	if r.Intn(4) == 0 {
		typ = TypeRecordCreated
	}
	return &Event{ID: fmt.Sprintf("ev-%d", i), Type: typ, Workspace: ws, Object: crm.ObjOpportunity, Record: rec}
}
