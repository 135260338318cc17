package engine

import (
	"fmt"
	"testing"

	"github.com/whenthen/whenthen/actions"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		cooldown bool
		statuses []ClaimStatus
		outcome  string
		reason   string
		emit     string
	}{
		{"new", false, []ClaimStatus{ClaimNew}, actions.OutcomeCompleted, "", "[true]"},
		{"our own retried claim", false, []ClaimStatus{ClaimOurs}, actions.OutcomeCompleted, "", "[true]"},
		{"redelivery", false, []ClaimStatus{ClaimDone}, actions.OutcomeSkipped, actions.ReasonDuplicate, "[false]"},
		{"enrolled elsewhere", false, []ClaimStatus{ClaimEnrolled, ClaimEnrolled}, actions.OutcomeSkipped, actions.ReasonAlreadyEnrolled, "[false false]"},
		{"some people new", false, []ClaimStatus{ClaimEnrolled, ClaimNew, ClaimDone}, actions.OutcomeCompleted, "", "[false true false]"},
		{"duplicate wins over enrolled", false, []ClaimStatus{ClaimEnrolled, ClaimDone}, actions.OutcomeSkipped, actions.ReasonDuplicate, "[false false]"},
		{"cooldown", true, []ClaimStatus{ClaimNew}, actions.OutcomeSkipped, actions.ReasonCooldown, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Claim{Cooldown: tt.cooldown}
			for _, s := range tt.statuses {
				c.Targets = append(c.Targets, ClaimTarget{Status: s})
			}
			outcome, reason, emit := decide(c)
			if outcome != tt.outcome || reason != tt.reason || fmt.Sprint(emit) != tt.emit {
				t.Fatalf("got %s/%s %v, want %s/%s %s", outcome, reason, emit, tt.outcome, tt.reason, tt.emit)
			}
		})
	}
}
