package actions_test

import (
	"regexp"
	"testing"

	"github.com/whenthen/whenthen/actions"
)

func TestIDsAreStable(t *testing.T) {
	// These values are a contract with consumers that deduplicate on them:
	// they must never change.
	for _, tc := range []struct {
		name, got, want string
	}{
		{"brief", actions.ActionID("acme", "closed-won-brief", "evt-9f1c", actions.TypeBrief), "a-8037666147f552fd4d46697790cc318f"},
		{"flow", actions.ActionID("acme", "upsell-flow", "evt-9f1c", "003X"), "a-60d486531028ee0996153c24b579d80e"},
		{"no workspace", actions.ActionID("", "closed-won-brief", "evt-9f1c", actions.TypeBrief), "a-bb02a10c1a032800a9c8779b19f0f371"},
		{"run", actions.RunID("acme", "closed-won-brief", "evt-9f1c"), "r-01a91cf73cfb6acc1260e3a0db6d6ee4"},
		{"empty run", actions.RunID("", "", ""), "r-1fc06b3673f20c5ac7d37e2122afd2e0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %s, want %s", tc.got, tc.want)
			}
		})
	}
}

func TestIDsDoNotCollide(t *testing.T) {
	format := regexp.MustCompile(`^[ar]-[0-9a-f]{32}$`)
	long := string(make([]byte, 300)) // longer than the stack buffer
	seen := map[string][]string{}
	add := func(id string, args ...string) {
		t.Helper()
		if !format.MatchString(id) {
			t.Errorf("id %q of %q: bad format", id, args)
		}
		if prev, ok := seen[id]; ok {
			t.Errorf("id %s of %q is also the id of %q", id, args, prev)
		}
		seen[id] = args
	}
	// Moving the boundary between parts, or swapping parts, changes the id.
	for _, p := range [][4]string{
		{"acme", "ab", "c", "brief"},
		{"acme", "a", "bc", "brief"},
		{"acmea", "b", "c", "brief"},
		{"acme", "abc", "", "brief"},
		{"", "acme", "abc", "brief"},
		{"acme", "c", "ab", "brief"},
		{"acme", "ab", "c", "p-1"},
		{"acme", "ab", "cp-1", ""},
		{"other", "ab", "c", "brief"},
		{"acme\x00", "ab", "c", "brief"},
		{long, "ab", "c", "brief"},
		{long + "x", "ab", "c", "brief"},
	} {
		add(actions.ActionID(p[0], p[1], p[2], p[3]), p[:]...)
		add(actions.RunID(p[0], p[1], p[2]+"/"+p[3]), "run", p[0], p[1], p[2]+"/"+p[3])
	}
	if a, b := actions.ActionID("w", "a", "e", "t"), actions.ActionID("w", "a", "e", "t"); a != b {
		t.Errorf("ActionID is not deterministic: %s != %s", a, b)
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"flow: person", (&actions.Action{Type: actions.TypeFlow, RecordID: "006A1", Flow: &actions.Flow{ID: "f", PersonID: "003X"}}).Key(), "003X"},
		{"brief: record", (&actions.Action{Type: actions.TypeBrief, RecordID: "006A1", Brief: &actions.Brief{Kind: "opportunity"}}).Key(), "006A1"},
		{"flow without payload: record", (&actions.Action{Type: actions.TypeFlow, RecordID: "006A1"}).Key(), "006A1"},
		{"run: record", (&actions.Run{RecordID: "006A1", EventID: "evt-1"}).Key(), "006A1"},
		{"run without record: event", (&actions.Run{EventID: "evt-1"}).Key(), "evt-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("Key() = %q, want %q", tc.got, tc.want)
			}
		})
	}
}
