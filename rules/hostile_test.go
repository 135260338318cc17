package rules

import (
	"context"
	"strings"
	"testing"

	"cel.dev/cel-go/interpreter"
	"github.com/whenthen/whenthen/crm"
)

// TestHostileExpressions: the expressions of RELIABILITY.md are rejected
// when rules load, or their evaluation ends in an error, never a hang.
func TestHostileExpressions(t *testing.T) {
	c := testCompiler(t)
	rejected := []struct{ name, cond, msg string }{
		{"100k characters", strings.Repeat("record.stage == \"x\" || ", 5000) + "true", "expression code point size exceeds limit"},
		{"nesting over 250", strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300), "expression recursion limit exceeded"},
		{"lists.range", "lists.range(1000000).size() > 0", "estimated worst-case cost"},
		{"nested comprehensions", "record.competitors.all(a, record.competitors.all(b, record.competitors.all(c, a + b + c != \"\")))", "estimated worst-case cost"},
		{"returns a string", "record.stage", "must be a bool expression"},
		{"matches with a pattern from the event", "record.name.matches(record.stage)", "estimated worst-case cost"},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Compile([]Source{{Name: "t.yaml", Data: []byte(oppAutomation(tt.cond))}})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("want an error containing %q, got %v", tt.msg, err)
			}
		})
	}
	opp, _ := c.Schema().Object(crm.ObjOpportunity)
	rec := mustRecord(t, opp, `{"id":"o","stage":"(a+)+$","name":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!","seats":3}`)
	runtime := []struct{ name, cond string }{
		{"x/0", "record.seats / 0 > 1"},
		{"int overflow", "record.seats * 9223372036854775807 > 0"},
	}
	for _, tt := range runtime {
		t.Run(tt.name, func(t *testing.T) {
			a := loadOne(t, c, oppAutomation(tt.cond))
			act, _ := interpreter.NewActivation(map[string]any{VarRecord: rec})
			if v, err := a.If.Eval(context.Background(), act); err == nil {
				t.Fatalf("want an error, got %v", v)
			}
		})
	}
	// Patterns run on RE2, in linear time: a classic catastrophic
	// backtracking pattern ends promptly with an answer.
	a := loadOne(t, c, oppAutomation(`record.name.matches("(a+)+$")`))
	act, _ := interpreter.NewActivation(map[string]any{VarRecord: rec})
	if _, err := a.If.Eval(context.Background(), act); err != nil {
		t.Fatal(err)
	}
}
