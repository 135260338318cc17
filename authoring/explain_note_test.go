package authoring

import (
	"context"
	"strings"
	"testing"

	"github.com/whenthen/whenthen/rules"
)

// TestExplainNoCandidates: when no automation is a candidate, the
// explanation says why: the workspace has none (naming those that have,
// with a did-you-mean), or none of its automations takes the event.
func TestExplainNoCandidates(t *testing.T) {
	f := newExplainFixture(t)
	globex := `
workspace: globex
automations:
  - id: globex-win
    when: {record: account}
    then: {brief: {}}
`
	noWS := `
automations:
  - id: nows-lead
    when: {record: lead}
    then: {flow: {id: f}}
`
	set2, err := f.c.Compile([]rules.Source{{Name: "r.yaml", Data: []byte(explainRules)}, {Name: "g.yaml", Data: []byte(globex)}})
	if err != nil {
		t.Fatal(err)
	}
	set3, err := f.c.Compile([]rules.Source{{Name: "r.yaml", Data: []byte(explainRules)}, {Name: "n.yaml", Data: []byte(noWS)}})
	if err != nil {
		t.Fatal(err)
	}
	opp := func(ws string) string {
		return `{"id":"e1","type":"record.created","time":"2026-11-01T10:00:00Z",` + ws + `"object":"opportunity","record":{"id":"o1"}}`
	}
	for _, tt := range []struct {
		name       string
		set        *rules.Set
		event      string
		note       string
		workspaces []string
	}{
		{"a near workspace", set2, opp(`"workspace":"acmee",`),
			`no automation of workspace "acmee" takes this event; the rules have automations for workspaces acme, globex (did you mean "acme"?)`,
			[]string{"acme", "globex"}},
		{"a workspace nothing like", f.set, opp(`"workspace":"initech",`),
			`no automation of workspace "initech" takes this event; the rules have automations for workspace acme`,
			[]string{"acme"}},
		{"no workspace", f.set, opp(""),
			`the event names no workspace, and no automation without a workspace takes it; the rules have automations for workspace acme`,
			[]string{"acme"}},
		{"automations without a workspace", set3, opp(`"workspace":"acm",`),
			`no automation of workspace "acm" takes this event; the rules have automations for workspace acme, and without a workspace (did you mean "acme"?)`,
			[]string{"", "acme"}},
		{"no trigger in the workspace", set2, `{"id":"e1","type":"record.created","time":"2026-11-01T10:00:00Z","workspace":"acme","object":"lead","record":{"id":"l1"}}`,
			`workspace "acme" has 6 automations, and none has a record or date trigger on lead`, nil},
		{"no trigger without a workspace", set3, `{"id":"t1","type":"tracker.detected","time":"2026-11-01T10:00:00Z","tracker":{"name":"Upsell"}}`,
			`the event names no workspace; of the 1 automation without one, none has a tracker trigger`, nil},
		{"candidates: no note", f.set, opp(`"workspace":"acme",`), "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x, err := Explain(context.Background(), ExplainOptions{Compiler: f.c, Set: tt.set}, f.event(t, tt.event))
			if err != nil {
				t.Fatal(err)
			}
			if x.Note != tt.note || strings.Join(x.Workspaces, ",") != strings.Join(tt.workspaces, ",") {
				t.Errorf("note %q, workspaces %q\nwant %q, %q", x.Note, x.Workspaces, tt.note, tt.workspaces)
			}
			var b strings.Builder
			x.WriteText(&b)
			if tt.note != "" && !strings.Contains(b.String(), "0 candidate automations, 0 completed\n"+tt.note+"\n") {
				t.Errorf("text:\n%s", b.String())
			}
		})
	}
	// With --automation the automation is explained whatever its
	// workspace: no note.
	x, err := Explain(context.Background(), ExplainOptions{Compiler: f.c, Set: f.set, Automation: "big-win"}, f.event(t, opp(`"workspace":"acmee",`)))
	if err != nil || x.Note != "" || len(x.Automations) != 1 {
		t.Fatalf("%v, %+v", err, x)
	}
}
