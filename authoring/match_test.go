package authoring

import (
	"strings"
	"testing"
)

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := decodeJSON([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

func TestTestMatchValue(t *testing.T) {
	got := `{"automation_id":"x","brief":{"kind":"opportunity","recipients":["user:u-1","user:u-2"]},"late_ms":0,
		"event_time":"2026-11-01T10:00:00Z","amount":200000,"reason":""}`
	for _, tt := range []struct {
		name, want string
		ok         bool
	}{
		{"subset", `{"automation_id":"x"}`, true},
		{"other value", `{"automation_id":"y"}`, false},
		{"nested subset", `{"brief":{"kind":"opportunity"}}`, true},
		{"list in order", `{"brief":{"recipients":["user:u-1","user:u-2"]}}`, true},
		{"list out of order", `{"brief":{"recipients":["user:u-2","user:u-1"]}}`, false},
		{"list subset is not a match", `{"brief":{"recipients":["user:u-1"]}}`, false},
		{"number across int and double", `{"amount":200000.0}`, true},
		{"number differs", `{"amount":200001}`, false},
		{"string is not a number", `{"amount":"200000"}`, false},
		{"same instant", `{"event_time":"2026-11-01T11:00:00+01:00"}`, true},
		{"other instant", `{"event_time":"2026-11-01T10:00:01Z"}`, false},
		{"absent field matches zero", `{"error":"","record_id":null,"action_ids":[]}`, true},
		{"absent field does not match a value", `{"error":"boom"}`, false},
		{"empty string present", `{"reason":""}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if ok := matchValue(mustJSON(t, tt.want), mustJSON(t, got)); ok != tt.ok {
				t.Fatalf("matchValue = %v, want %v", ok, tt.ok)
			}
		})
	}
}

// TestTestMatchAssign: each expectation gets a record of its own, and the
// assignment finds a perfect one when one exists.
func TestTestMatchAssign(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   [][]bool
		want []int
	}{
		{"greedy would fail", [][]bool{{true, true}, {true, false}}, []int{1, 0}},
		{"two expectations, one record", [][]bool{{true}, {true}}, []int{0, -1}},
		{"none", [][]bool{{false, false}}, []int{-1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := assign(tt.ok, len(tt.ok[0]))
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("assign = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestTestFileErrors: every problem of a test file is reported at once,
// with its position.
func TestTestFileErrors(t *testing.T) {
	src := `rules: [x]
tests:
  - name: one
    events:
      - {id: e1, amount: .inf}
      - [not, a, mapping]
    until: tomorrow
    expect:
      actions:
        - {automation: x, flow.person: p}
      runs:
        - {outcome: completed}
      surprise: true
  - name: one
    events: []
  - events: [{id: e1}]
    colour: red
`
	_, err := ParseTestFile("t.yaml", []byte(src))
	want := `t.yaml:5:26: test "one": event: .inf has no JSON form (quote it for a string)
t.yaml:6:9: test "one": an event must be a mapping (an event envelope as docs/events.md describes)
t.yaml:7:12: test "one": until: want an RFC 3339 time such as 2026-12-01T00:00:00Z
t.yaml:10:12: test "one": expected action: unknown field "automation" (action fields: action_id, automation_id, brief, event_id, event_time, fired_at, flow, object, record_id, type, workspace)
t.yaml:10:27: test "one": expected action: unknown field "flow.person"
t.yaml:13:7: test "one": unknown key "surprise" under expect (want actions, runs, only_listed_actions, only_listed_runs)
t.yaml:14:5: test "one": a test needs events
t.yaml:14:5: test "one": the name is already used by the test at line 3
t.yaml:16:5: a test needs a name
t.yaml:17:5: unknown key "colour" (want name, events, until, expect)`
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	if _, err := ParseTestFile("t.yaml", []byte("tests: []\n")); err == nil || !strings.Contains(err.Error(), "rules is required") {
		t.Fatalf("no rules: %v", err)
	}
}

// TestTestFileEvents: events become JSON with the file's workspace where
// they name none, YAML scalars keeping their JSON types.
func TestTestFileEvents(t *testing.T) {
	tf, err := ParseTestFile("dir/t.yaml", []byte(`rules: ../rules
schema: /abs/schema.yaml
workspace: acme
tests:
  - name: a
    events:
      - {id: e1, n: 0x10, big: 12345678901234567890, f: 1.5e3, b: true, z: null, s: "2026-11-01", t: 2026-11-01T09:00:00Z, l: [1, x]}
      - {id: e2, workspace: globex}
      - {id: e3, workspace: null}
`))
	if err != nil {
		t.Fatal(err)
	}
	if tf.Rules[0] != "rules" || tf.Schema != "/abs/schema.yaml" {
		t.Fatalf("paths: %v %q", tf.Rules, tf.Schema)
	}
	want := []string{
		`{"id":"e1","n":16,"big":12345678901234567890,"f":1.5e3,"b":true,"z":null,"s":"2026-11-01","t":"2026-11-01T09:00:00Z","l":[1,"x"],"workspace":"acme"}`,
		`{"id":"e2","workspace":"globex"}`,
		`{"id":"e3","workspace":null}`,
	}
	for i, ev := range tf.Tests[0].Events {
		if string(ev.JSON) != want[i] {
			t.Errorf("event %d:\n got %s\nwant %s", i, ev.JSON, want[i])
		}
	}
}
