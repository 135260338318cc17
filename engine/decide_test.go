package engine

import (
	"fmt"
	"testing"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/engine/store"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		cooldown bool
		statuses []store.Status
		outcome  string
		reason   string
		emit     string
	}{
		{"new", false, []store.Status{store.StatusNew}, actions.OutcomeCompleted, "", "[true]"},
		{"our own retried claim", false, []store.Status{store.StatusOurs}, actions.OutcomeCompleted, "", "[true]"},
		{"redelivery", false, []store.Status{store.StatusDone}, actions.OutcomeSkipped, actions.ReasonDuplicate, "[false]"},
		{"enrolled elsewhere", false, []store.Status{store.StatusEnrolled, store.StatusEnrolled}, actions.OutcomeSkipped, actions.ReasonAlreadyEnrolled, "[false false]"},
		{"some people new", false, []store.Status{store.StatusEnrolled, store.StatusNew, store.StatusDone}, actions.OutcomeCompleted, "", "[false true false]"},
		{"duplicate wins over enrolled", false, []store.Status{store.StatusEnrolled, store.StatusDone}, actions.OutcomeSkipped, actions.ReasonDuplicate, "[false false]"},
		{"cooldown", true, []store.Status{store.StatusNew}, actions.OutcomeSkipped, actions.ReasonCooldown, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &store.Claim{Cooldown: tt.cooldown}
			for _, s := range tt.statuses {
				c.Targets = append(c.Targets, store.Target{Status: s})
			}
			outcome, reason, emit := decide(c)
			if outcome != tt.outcome || reason != tt.reason || fmt.Sprint(emit) != tt.emit {
				t.Fatalf("got %s/%s %v, want %s/%s %s", outcome, reason, emit, tt.outcome, tt.reason, tt.emit)
			}
		})
	}
}
