package rules

import (
	"context"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
	"github.com/whenthen/whenthen/crm"
)

// TestClausePrograms evaluates each clause of a condition on its own and
// checks the values, and that the programs come from the cache.
func TestClausePrograms(t *testing.T) {
	c := testCompiler(t)
	opp, _ := c.Schema().Object(crm.ObjOpportunity)
	rec := mustRecord(t, opp, `{"id":"o1","stage":"Closed Won","amount":150000,"competitors":["acme"]}`)
	act, _ := interpreter.NewActivation(map[string]any{
		VarRecord: rec, VarBefore: opp.Empty(), VarChanged: types.NewStringList(types.DefaultTypeAdapter, nil),
		VarAccount: stdObject(c.Schema(), crm.ObjAccount).Empty(), VarOpportunity: rec,
		VarEvent: mustRecord(t, c.Schema().Event, `{"id":"e","type":"record.updated"}`),
		VarNow:   types.Timestamp{},
	})
	tests := []struct {
		cond  string
		texts []string
		want  []bool
	}{
		{`record.stage == "Closed Won" && record.amount > 200000`,
			[]string{`record.stage == "Closed Won"`, `record.amount > 200000`}, []bool{true, false}},
		{`(record.amount > 100 || record.stage == "") && !(record.stage == "Closed Lost") && "acme" in record.competitors`,
			[]string{`(record.amount > 100 || record.stage == "")`, `!(record.stage == "Closed Lost")`, `"acme" in record.competitors`},
			[]bool{true, true, true}},
		{`record.amount > 1`, []string{`record.amount > 1`}, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			a := loadOne(t, c, oppAutomation(tt.cond))
			progs, err := c.ClausePrograms(a)
			if err != nil {
				t.Fatal(err)
			}
			if len(progs) != len(tt.texts) {
				t.Fatalf("%d programs, want %d", len(progs), len(tt.texts))
			}
			for i, p := range progs {
				if p.Expr != tt.texts[i] {
					t.Errorf("clause %d: %q, want %q", i, p.Expr, tt.texts[i])
				}
				v, err := p.Eval(context.Background(), act)
				if err != nil {
					t.Fatalf("clause %d: %v", i, err)
				}
				if v != types.Bool(tt.want[i]) {
					t.Errorf("clause %d %q = %v, want %v", i, p.Expr, v, tt.want[i])
				}
			}
			again, _ := c.ClausePrograms(a)
			for i := range again {
				if again[i] != progs[i] {
					t.Errorf("clause %d compiled twice", i)
				}
			}
		})
	}
	t.Run("no condition", func(t *testing.T) {
		a := loadOne(t, c, "automations:\n  - id: a\n    when: {record: opportunity}\n    then: {brief: {}}\n")
		if progs, err := c.ClausePrograms(a); progs != nil || err != nil {
			t.Fatalf("%v, %v; want nil, nil", progs, err)
		}
	})
	t.Run("bad clause", func(t *testing.T) {
		a := loadOne(t, c, oppAutomation(`record.amount > 1 && record.stage == "x"`))
		a.If.Clauses[1].Text = `record.stage +`
		_, err := c.ClausePrograms(a)
		if err == nil || !strings.Contains(err.Error(), `automation a: clause 2 "record.stage +" does not compile on its own`) {
			t.Fatalf("err = %v", err)
		}
	})
}
