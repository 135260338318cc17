package rules

import (
	"strings"
	"testing"
)

func TestReads(t *testing.T) {
	tests := []struct {
		when, cond string
		want       string // clauses separated by " | ", fields by ","
	}{
		{"{record: opportunity}", `record.stage == "Closed Won" && record.amount > 200000`, "record.stage | record.amount"},
		{"{record: opportunity}", `record.amount > 5 && (record.amount < 10 || has(record.type)) && account.tier == "E"`,
			"record.amount | record.amount,record.type | account.tier"},
		{"{record: opportunity}", `before.stage != record.stage`, "before.stage,record.stage"},
		{"{record: opportunity}", `"stage" in changed && now - record.updated_at > duration("1h")`, " | record.updated_at"},
		{"{tracker: Upsell}", `tracker.participants.exists(p, p.role == "customer") && tracker.confidence > 0.5`,
			"tracker.participants | tracker.confidence"},
		{"{record: lead}", `record.score > 10 || record.status == "new"`, "record.score,record.status"},
	}
	c := testCompiler(t)
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			y := "automations:\n  - id: a\n    when: " + tt.when + "\n    if: '" + strings.ReplaceAll(tt.cond, "'", "''") + "'\n    then: {flow: {id: f, who: '\"x\"'}}\n"
			set, err := c.Compile([]Source{{Name: "t.yaml", Data: []byte(y)}})
			if err != nil {
				t.Fatal(err)
			}
			a, _ := set.Automation("a")
			reads, err := a.If.Reads(c.Schema())
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, cl := range reads {
				var fs []string
				for _, f := range cl {
					fs = append(fs, f.String())
				}
				parts = append(parts, strings.Join(fs, ","))
			}
			if got := strings.Join(parts, " | "); got != tt.want {
				t.Fatalf("reads %q, want %q", got, tt.want)
			}
			if len(reads) != len(a.If.Clauses) && len(reads) != 1 {
				t.Fatalf("%d clause reads for %d clauses", len(reads), len(a.If.Clauses))
			}
		})
	}
}
