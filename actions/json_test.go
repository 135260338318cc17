package actions_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
)

// plainAction and plainRun have the fields of Action and Run without their
// methods: encoding/json encodes them the standard way, the reference the
// hand-written encoder is held to.
type (
	plainAction actions.Action
	plainRun    actions.Run
)

// stdJSON encodes v as encoding/json does without HTML escaping.
func stdJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// normAction is what the hand-written encoder writes for a, stated in the
// terms encoding/json understands: times in UTC, recipients never null.
func normAction(a actions.Action) actions.Action {
	a.EventTime = a.EventTime.UTC()
	a.FiredAt = a.FiredAt.UTC()
	if a.Brief != nil {
		b := *a.Brief
		if b.Recipients == nil {
			b.Recipients = []string{}
		}
		a.Brief = &b
	}
	return a
}

func normRun(r actions.Run) actions.Run {
	r.RanAt = r.RanAt.UTC()
	if r.ActionIDs == nil {
		r.ActionIDs = []string{}
	}
	if r.Why != nil {
		w := *r.Why
		if w.Clauses == nil {
			w.Clauses = []actions.Clause{}
		}
		if w.Values == nil {
			w.Values = []actions.Value{}
		}
		r.Why = &w
	}
	if c := r.Context; c != nil {
		c2 := *c
		if c.Timer != nil {
			t := *c.Timer
			t.Date, t.Due = t.Date.UTC(), t.Due.UTC()
			c2.Timer = &t
		}
		if c.Schedule != nil {
			sc := *c.Schedule
			sc.Tick = sc.Tick.UTC()
			c2.Schedule = &sc
		}
		r.Context = &c2
	}
	return r
}

// validUTF8 replaces every byte that is not part of valid UTF-8 with U+FFFD,
// one for one, as a JSON round trip does.
func validUTF8(s string) string { return string([]rune(s)) }

// decodedAction is what json.Unmarshal gives back for a.
func decodedAction(a actions.Action) actions.Action {
	a = normAction(a)
	for _, p := range []*string{&a.ActionID, &a.Workspace, &a.AutomationID, &a.Type, &a.Object, &a.RecordID, &a.EventID, &a.RunID} {
		*p = validUTF8(*p)
	}
	if a.Brief != nil {
		a.Brief.Kind = validUTF8(a.Brief.Kind)
		rs := make([]string, len(a.Brief.Recipients))
		for i, r := range a.Brief.Recipients {
			rs[i] = validUTF8(r)
		}
		a.Brief.Recipients = rs
	}
	if a.Flow != nil {
		f := *a.Flow
		f.ID, f.PersonID = validUTF8(f.ID), validUTF8(f.PersonID)
		a.Flow = &f
	}
	return a
}

func decodedRun(r actions.Run) actions.Run {
	r = normRun(r)
	for _, p := range []*string{&r.RunID, &r.Workspace, &r.AutomationID, &r.Trigger, &r.EventID, &r.Object, &r.RecordID, &r.Outcome, &r.Reason, &r.Error} {
		*p = validUTF8(*p)
	}
	ids := make([]string, len(r.ActionIDs))
	for i, id := range r.ActionIDs {
		ids[i] = validUTF8(id)
	}
	r.ActionIDs = ids
	if w := r.Why; w != nil {
		cs := make([]actions.Clause, len(w.Clauses))
		for i, c := range w.Clauses {
			c.Text, c.Error = validUTF8(c.Text), validUTF8(c.Error)
			cs[i] = c
		}
		vs := make([]actions.Value, len(w.Values))
		for i, v := range w.Values {
			v.Field = validUTF8(v.Field)
			if v.Value == nil {
				v.Value = json.RawMessage("null") // written as null, read back as the literal
			}
			vs[i] = v
		}
		w.Clauses, w.Values = cs, vs
	}
	if r.Persons != nil {
		ps := make([]actions.Person, len(r.Persons))
		for i, p := range r.Persons {
			p.PersonID, p.Status, p.Reason, p.ActionID = validUTF8(p.PersonID), validUTF8(p.Status), validUTF8(p.Reason), validUTF8(p.ActionID)
			ps[i] = p
		}
		r.Persons = ps
	}
	if c := r.Context; c != nil {
		if t := c.Tracker; t != nil {
			t.Name, t.CallID, t.AccountID, t.OpportunityID = validUTF8(t.Name), validUTF8(t.CallID), validUTF8(t.AccountID), validUTF8(t.OpportunityID)
		}
		if k := c.Call; k != nil {
			k.ID, k.Title, k.AccountID, k.OpportunityID = validUTF8(k.ID), validUTF8(k.Title), validUTF8(k.AccountID), validUTF8(k.OpportunityID)
		}
		if t := c.Timer; t != nil {
			t.Field = validUTF8(t.Field)
		}
		if sc := c.Schedule; sc != nil {
			sc.Name, sc.Cron = validUTF8(sc.Name), validUTF8(sc.Cron)
		}
	}
	return r
}

// hostilePieces are the fragments random strings are made of: everything
// JSON escaping can get wrong.
var hostilePieces = []string{
	"", "a", "Z", "0", " ", "acme", "006A1", "evt-9f1c", "Closed Won",
	`"`, `\`, `\"`, `\\u0000`, "/", "'", "`",
	"\x00", "\x01", "\x07", "\b", "\t", "\n", "\v", "\f", "\r", "\x1b", "\x1f", "\x7f",
	"<", ">", "&", "</script>", "&amp;",
	"é", "ß", "日本語", "😀", "👩‍👩‍👧", "\u00a0", "\ufeff", "\ufffd", "\u200b",
	"\u2027", "\u2028", "\u2029", "\u202a",
	"\x80", "\xbf", "\xc0\xaf", "\xc3", "\xe2\x80", "\xe2\x28\xa1", "\xed\xa0\x80", "\xed\xbf\xbf",
	"\xf0\x9f\x98", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xfe", "\xff",
}

func randString(rng *rand.Rand) string {
	var sb strings.Builder
	for n := rng.IntN(8); n > 0; n-- {
		switch rng.IntN(5) {
		case 0: // a random byte, valid or not
			sb.WriteByte(byte(rng.IntN(256)))
		case 1: // a random rune, surrogates and U+2028 included
			sb.WriteRune(rune(rng.IntN(0x110000)))
		default:
			sb.WriteString(hostilePieces[rng.IntN(len(hostilePieces))])
		}
	}
	return sb.String()
}

func randStrings(rng *rand.Rand) []string {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	ss := make([]string, 1+rng.IntN(4))
	for i := range ss {
		ss[i] = randString(rng)
	}
	return ss
}

var zones = []*time.Location{
	time.UTC, time.FixedZone("X", -12*3600), time.FixedZone("Y", 5*3600+1800), time.FixedZone("", 14*3600),
}

func randTime(rng *rand.Rand) time.Time {
	switch rng.IntN(6) {
	case 0:
		return time.Time{}
	case 1: // a "now" with a monotonic reading
		return time.Now().Add(time.Duration(rng.Int64N(int64(time.Hour))))
	}
	lo := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	nsec := int64(0)
	switch rng.IntN(3) {
	case 1:
		nsec = rng.Int64N(1e9)
	case 2:
		nsec = rng.Int64N(1000) * 1e6
	}
	t := time.Unix(lo+rng.Int64N(hi-lo-2*86400)+86400, nsec)
	return t.In(zones[rng.IntN(len(zones))])
}

func randAction(rng *rand.Rand) actions.Action {
	a := actions.Action{
		ActionID:     randString(rng),
		Workspace:    randString(rng),
		AutomationID: randString(rng),
		Type:         randString(rng),
		Object:       randString(rng),
		RecordID:     randString(rng),
		EventID:      randString(rng),
		EventTime:    randTime(rng),
		FiredAt:      randTime(rng),
	}
	if rng.IntN(2) == 0 {
		a.Brief = &actions.Brief{Kind: randString(rng), Recipients: randStrings(rng)}
	}
	if rng.IntN(2) == 0 {
		a.Flow = &actions.Flow{ID: randString(rng), PersonID: randString(rng)}
	}
	if rng.IntN(2) == 0 {
		a.RunID = randString(rng)
	}
	return a
}

// rawValues are compact JSON values, as the engine writes them into a why.
var rawValues = []string{`null`, `true`, `0`, `-1.5`, `250000`, `1e+21`, `"Closed Won"`, `""`, `"\u0000\"<>&"`, `["a","b"]`, `[]`, `{"k":1,"l":[null]}`, `"2026-11-24T10:00:00Z"`}

func randFloat(rng *rand.Rand) float64 {
	switch rng.IntN(5) {
	case 0:
		return 0
	case 1:
		return rng.Float64()
	case 2:
		return (rng.Float64() - 0.5) * 1e-8
	case 3:
		return rng.NormFloat64() * 1e22
	}
	return float64(rng.IntN(100)) / 100
}

func randBool(rng *rand.Rand) *bool {
	if rng.IntN(3) == 0 {
		return nil
	}
	b := rng.IntN(2) == 0
	return &b
}

func randWhy(rng *rand.Rand) *actions.Why {
	if rng.IntN(3) == 0 {
		return nil
	}
	w := &actions.Why{HeldBefore: randBool(rng), Truncated: rng.IntN(4) == 0}
	for range rng.IntN(4) {
		w.Clauses = append(w.Clauses, actions.Clause{Text: randString(rng), Result: randBool(rng), Error: randString(rng)})
	}
	if rng.IntN(5) == 0 {
		w.Clauses = []actions.Clause{}
	}
	for range rng.IntN(4) {
		v := actions.Value{Field: randString(rng), Truncated: rng.IntN(4) == 0}
		if rng.IntN(6) > 0 {
			v.Value = json.RawMessage(rawValues[rng.IntN(len(rawValues))])
		}
		w.Values = append(w.Values, v)
	}
	return w
}

func randContext(rng *rand.Rand) *actions.Context {
	if rng.IntN(3) == 0 {
		return nil
	}
	c := &actions.Context{}
	if rng.IntN(2) == 0 {
		c.Tracker = &actions.TrackerContext{Name: randString(rng), CallID: randString(rng), Confidence: randFloat(rng), AccountID: randString(rng), OpportunityID: randString(rng)}
	}
	if rng.IntN(2) == 0 {
		c.Call = &actions.CallContext{ID: randString(rng), Title: randString(rng), AccountID: randString(rng), OpportunityID: randString(rng)}
	}
	if rng.IntN(2) == 0 {
		c.Timer = &actions.TimerContext{Field: randString(rng), Date: randTime(rng), Due: randTime(rng), LateMS: rng.Int64N(1e9) - 1e3}
	}
	if rng.IntN(2) == 0 {
		c.Schedule = &actions.ScheduleContext{Name: randString(rng), Cron: randString(rng), Tick: randTime(rng), LateMS: rng.Int64N(3) * 1000}
	}
	return c
}

func randRun(rng *rand.Rand) actions.Run {
	r := actions.Run{
		RunID:        randString(rng),
		Workspace:    randString(rng),
		AutomationID: randString(rng),
		Trigger:      randString(rng),
		EventID:      randString(rng),
		Object:       randString(rng),
		RecordID:     randString(rng),
		RanAt:        randTime(rng),
		Outcome:      randString(rng),
		Reason:       randString(rng),
		Error:        randString(rng),
		ActionIDs:    randStrings(rng),
	}
	r.Why, r.Context = randWhy(rng), randContext(rng)
	for range rng.IntN(3) {
		r.Persons = append(r.Persons, actions.Person{PersonID: randString(rng), Status: randString(rng), Reason: randString(rng), ActionID: randString(rng)})
	}
	switch rng.IntN(4) {
	case 0:
	case 1:
		r.LateMS = rng.Int64()
	case 2:
		r.LateMS = -rng.Int64() - 1
	case 3:
		r.LateMS = rng.Int64N(1000)
	}
	return r
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 5000
	t.Run("action", func(t *testing.T) {
		for i := range n {
			a := randAction(rng)
			got := a.AppendJSON(nil)
			if want := stdJSON(t, plainAction(normAction(a))); !bytes.Equal(got, want) {
				t.Fatalf("case %d: %#v\nAppendJSON:    %s\nencoding/json: %s", i, a, got, want)
			}
			var back actions.Action
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("case %d: json.Unmarshal(%s): %v", i, got, err)
			}
			if want := decodedAction(a); !reflect.DeepEqual(back, want) {
				t.Fatalf("case %d: round trip\n got %#v\nwant %#v", i, back, want)
			}
		}
	})
	t.Run("run", func(t *testing.T) {
		for i := range n {
			r := randRun(rng)
			got := r.AppendJSON(nil)
			if want := stdJSON(t, plainRun(normRun(r))); !bytes.Equal(got, want) {
				t.Fatalf("case %d: %#v\nAppendJSON:    %s\nencoding/json: %s", i, r, got, want)
			}
			var back actions.Run
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("case %d: json.Unmarshal(%s): %v", i, got, err)
			}
			if want := decodedRun(r); !reflect.DeepEqual(back, want) {
				t.Fatalf("case %d: round trip\n got %#v\nwant %#v", i, back, want)
			}
		}
	})
}

func TestAppendJSONAppends(t *testing.T) {
	a := actions.Action{ActionID: "a-1", Type: actions.TypeBrief}
	prefix := []byte(`{"action":`)
	got := a.AppendJSON(prefix[:len(prefix):len(prefix)])
	if !bytes.HasPrefix(got, prefix) || !json.Valid(got[len(prefix):]) {
		t.Fatalf("AppendJSON(prefix) = %s", got)
	}
}

func TestAppendJSONStrings(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "acme", `"acme"`},
		{"empty", "", `""`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"named controls", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"other controls", "\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"DEL is plain", "\x7f", "\"\x7f\""},
		{"HTML is plain", "<a href='x'>&</a>", `"<a href='x'>&</a>"`},
		{"multibyte", "日本😀", `"日本😀"`},
		{"line and paragraph separators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"invalid byte", "a\xffb", `"a\ufffdb"`},
		{"truncated sequence", "\xe2\x80", `"\ufffd\ufffd"`},
		{"encoded surrogate", "\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"overlong slash", "\xc0\xaf", `"\ufffd\ufffd"`},
		{"above U+10FFFF", "\xf4\x90\x80\x80", `"\ufffd\ufffd\ufffd\ufffd"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := actions.Run{Reason: tc.in}
			got := string(r.AppendJSON(nil))
			field := `"reason":` + tc.want + ","
			if !strings.Contains(got, field) {
				t.Errorf("AppendJSON = %s\nwant it to contain %s", got, field)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("AppendJSON = %s: invalid JSON", got)
			}
		})
	}
}

func TestAppendJSONExample(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	a := actions.Action{
		ActionID: "a-3b9e", Workspace: "acme", AutomationID: "closed-won-brief", Type: actions.TypeBrief,
		Brief:  &actions.Brief{Kind: "opportunity", Recipients: []string{"user:u-7", "user:u-42"}},
		Object: "opportunity", RecordID: "006A1", EventID: "evt-9f1c",
		EventTime: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
		FiredAt:   time.Date(2026, 11, 24, 10, 0, 0, 12e6, time.UTC).In(ny),
	}
	const wantAction = `{"action_id":"a-3b9e","workspace":"acme","automation_id":"closed-won-brief","type":"brief",` +
		`"brief":{"kind":"opportunity","recipients":["user:u-7","user:u-42"]},` +
		`"object":"opportunity","record_id":"006A1","event_id":"evt-9f1c",` +
		`"event_time":"2026-11-24T10:00:00Z","fired_at":"2026-11-24T10:00:00.012Z"}`
	if got := string(a.AppendJSON(nil)); got != wantAction {
		t.Errorf("action:\n got %s\nwant %s", got, wantAction)
	}

	r := actions.Run{
		RunID: "r-1", Workspace: "acme", AutomationID: "renewal-30d", Trigger: "date", EventID: "evt-1",
		RanAt:   time.Date(2026, 11, 24, 10, 0, 0, 1, time.UTC),
		Outcome: actions.OutcomeSkipped, Reason: actions.ReasonNoPerson, LateMS: 1500,
	}
	const wantRun = `{"run_id":"r-1","workspace":"acme","automation_id":"renewal-30d","trigger":"date","event_id":"evt-1",` +
		`"ran_at":"2026-11-24T10:00:00.000000001Z","outcome":"skipped","reason":"no_person","late_ms":1500,"action_ids":[]}`
	if got := string(r.AppendJSON(nil)); got != wantRun {
		t.Errorf("run:\n got %s\nwant %s", got, wantRun)
	}
}

func TestAppendJSONTimes(t *testing.T) {
	west := time.FixedZone("W", -(12*3600 + 30*60))
	for _, tm := range []time.Time{
		{},
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 11, 24, 10, 0, 0, 12e6, time.UTC),
		time.Date(2026, 11, 24, 10, 0, 0, 100, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 60, 0, time.UTC), // normalised to Mar 1
		time.Date(2026, 12, 31, 20, 0, 0, 5e8, west),    // next year in UTC
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(1_800_000_000, 123456789),
	} {
		want, err := tm.UTC().MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		r := actions.Run{RanAt: tm}
		if got := string(r.AppendJSON(nil)); !strings.Contains(got, `"ran_at":`+string(want)+",") {
			t.Errorf("%v: AppendJSON = %s, want ran_at %s", tm, got, want)
		}
	}
	// Years without an RFC 3339 form are written as time.RFC3339Nano writes them.
	for _, tm := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		r := actions.Run{RanAt: tm}
		want := `"ran_at":"` + tm.Format(time.RFC3339Nano) + `",`
		if got := string(r.AppendJSON(nil)); !strings.Contains(got, want) {
			t.Errorf("%v: AppendJSON = %s, want %s", tm, got, want)
		}
	}
}

func TestMarshalJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		a, r := randAction(rng), randRun(rng)
		// Values, pointers and values inside other values all use MarshalJSON.
		// encoding/json re-escapes <, > and & in what MarshalJSON returns.
		for _, v := range []any{a, &a, map[string]any{"action": a}} {
			got, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("case %d: json.Marshal(%T): %v", i, v, err)
			}
			want := a.AppendJSON(nil)
			if _, ok := v.(map[string]any); ok {
				want = append(append([]byte(`{"action":`), want...), '}')
			}
			var htmlSafe bytes.Buffer
			json.HTMLEscape(&htmlSafe, want)
			if !bytes.Equal(got, htmlSafe.Bytes()) {
				t.Fatalf("case %d: json.Marshal(%T)\n got %s\nwant %s", i, v, got, htmlSafe.Bytes())
			}
		}
		for _, v := range []any{r, &r} {
			got, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("case %d: json.Marshal(%T): %v", i, v, err)
			}
			var htmlSafe bytes.Buffer
			json.HTMLEscape(&htmlSafe, r.AppendJSON(nil))
			if !bytes.Equal(got, htmlSafe.Bytes()) {
				t.Fatalf("case %d: json.Marshal(%T)\n got %s\nwant %s", i, v, got, htmlSafe.Bytes())
			}
		}
	}

	t.Run("year out of range", func(t *testing.T) {
		far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, err := json.Marshal(actions.Action{FiredAt: far}); err == nil {
			t.Error("json.Marshal(Action with year 10000) succeeded")
		}
		if _, err := json.Marshal(actions.Run{RanAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
			t.Error("json.Marshal(Run with year -1) succeeded")
		}
	})
}

func FuzzAppendJSON(f *testing.F) {
	for _, p := range hostilePieces {
		f.Add(p, p+"x", int64(len(p)))
	}
	f.Fuzz(func(t *testing.T, s1, s2 string, n int64) {
		tm := time.Unix(n%(1<<35), n%1e9)
		a := actions.Action{ActionID: s1, Workspace: s2, Type: s1, Brief: &actions.Brief{Kind: s2, Recipients: []string{s1, s2}},
			Flow: &actions.Flow{ID: s2, PersonID: s1}, Object: s1, RecordID: s2, EventID: s1, EventTime: tm, FiredAt: tm}
		if got, want := a.AppendJSON(nil), stdJSON(t, plainAction(normAction(a))); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:    %s\nencoding/json: %s", got, want)
		}
		yes := n%2 == 0
		r := actions.Run{RunID: s1, Error: s2, Reason: s1, ActionIDs: []string{s2}, LateMS: n, RanAt: tm,
			Why: &actions.Why{Clauses: []actions.Clause{{Text: s1, Result: &yes}, {Text: s2, Error: s1}},
				Values: []actions.Value{{Field: s2, Value: json.RawMessage(`"x"`)}}, HeldBefore: &yes},
			Persons: []actions.Person{{PersonID: s1, Status: s2, Reason: s1}},
			Context: &actions.Context{Tracker: &actions.TrackerContext{Name: s1, CallID: s2, Confidence: float64(n) / 7},
				Timer: &actions.TimerContext{Field: s2, Date: tm, Due: tm, LateMS: n}, Schedule: &actions.ScheduleContext{Cron: s1, Tick: tm}}}
		if got, want := r.AppendJSON(nil), stdJSON(t, plainRun(normRun(r))); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:    %s\nencoding/json: %s", got, want)
		}
	})
}

// benchRecords are typical records: ASCII ids, a few recipients.
func benchRecords() (actions.Action, actions.Run) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 12345678, time.UTC)
	a := actions.Action{
		ActionID: actions.ActionID("acme", "closed-won-brief", "evt-9f1c", actions.TypeBrief), Workspace: "acme",
		AutomationID: "closed-won-brief", Type: actions.TypeBrief,
		Brief:  &actions.Brief{Kind: "opportunity", Recipients: []string{"user:u-7", "user:u-42", "email:revops@example.com"}},
		Object: "opportunity", RecordID: "006A100000XyZ12", EventID: "evt-9f1c-4b2a-8e7d-123456789abc",
		EventTime: now.Add(-time.Second), FiredAt: now,
	}
	r := actions.Run{
		RunID: actions.RunID("acme", "closed-won-brief", "evt-9f1c"), Workspace: "acme",
		AutomationID: "closed-won-brief", Trigger: "record", EventID: a.EventID, Object: "opportunity",
		RecordID: a.RecordID, RanAt: now, Outcome: actions.OutcomeCompleted, ActionIDs: []string{a.ActionID},
	}
	return a, r
}

func BenchmarkActionJSON(b *testing.B) {
	a, _ := benchRecords()
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = a.AppendJSON(buf[:0])
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		p := plainAction(a)
		var n int
		for b.Loop() {
			out, err := json.Marshal(&p)
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.SetBytes(int64(n))
	})
}

func BenchmarkRunJSON(b *testing.B) {
	_, r := benchRecords()
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = r.AppendJSON(buf[:0])
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		p := plainRun(r)
		var n int
		for b.Loop() {
			out, err := json.Marshal(&p)
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.SetBytes(int64(n))
	})
}
