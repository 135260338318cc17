package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
)

// show renders the present fields of a record, in schema order, for
// comparison with an expected string: {id:"006A1" amount:250000.5 ...}.
func show(r *crm.Record) string {
	if r == nil {
		return "<nil>"
	}
	var parts []string
	r.Fields(func(f *crm.Field, v ref.Val) {
		parts = append(parts, f.Name+":"+showVal(v))
	})
	return "{" + strings.Join(parts, " ") + "}"
}

func showVal(v ref.Val) string {
	switch x := v.(type) {
	case types.String:
		return strconv.Quote(string(x))
	case types.Int:
		return "int(" + strconv.FormatInt(int64(x), 10) + ")"
	case types.Double:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case types.Bool:
		return strconv.FormatBool(bool(x))
	case types.Timestamp:
		return x.Time.UTC().Format(time.RFC3339Nano)
	case *crm.Record:
		return show(x)
	case traits.Mapper:
		var keys []string
		it := x.Iterator()
		for it.HasNext() == types.True {
			keys = append(keys, string(it.Next().(types.String)))
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + showVal(x.Get(types.String(k)))
		}
		return "map{" + strings.Join(parts, " ") + "}"
	case traits.Lister:
		var parts []string
		it := x.Iterator()
		for it.HasNext() == types.True {
			parts = append(parts, showVal(it.Next()))
		}
		return "[" + strings.Join(parts, " ") + "]"
	case types.Null:
		return "null"
	}
	return fmt.Sprintf("%T(%v)", v, v.Value())
}

// want is the expected decoding of a good message; records as rendered by
// show, "" for a nil record.
type want struct {
	ID, Type, Time, Workspace, Object, Schedule string
	Partial                                     bool
	Record, Before, Tracker, Call, Account, Opp string
}

func checkEvent(t *testing.T, ev *engine.Event, w want) {
	t.Helper()
	orNil := func(s string) string {
		if s == "" {
			return "<nil>"
		}
		return s
	}
	got := want{
		ID: ev.ID, Type: ev.Type, Time: ev.Time.Format(time.RFC3339Nano), Workspace: ev.Workspace,
		Object: ev.Object, Schedule: ev.Schedule, Partial: ev.Partial,
		Record: show(ev.Record), Before: show(ev.Before), Tracker: show(ev.Tracker), Call: show(ev.Call),
		Account: show(ev.Account), Opp: show(ev.Opportunity),
	}
	w.Record, w.Before, w.Tracker, w.Call, w.Account, w.Opp = orNil(w.Record), orNil(w.Before), orNil(w.Tracker), orNil(w.Call), orNil(w.Account), orNil(w.Opp)
	if got != w {
		t.Errorf("event mismatch\n got: %+v\nwant: %+v", got, w)
	}
}

// checkReject asserts err is a *DecodeError of reason whose message
// contains msg and whose Detail echoes none of the secrets.
func checkReject(t *testing.T, err error, reason, msg string, secrets ...string) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("got error %v (%T), want a *DecodeError of reason %s", err, err, reason)
	}
	if de.Reason != reason {
		t.Errorf("reason = %s (%s), want %s", de.Reason, de.Msg, reason)
	}
	if !strings.Contains(de.Msg, msg) {
		t.Errorf("message %q does not contain %q", de.Msg, msg)
	}
	if Reason(err) != reason {
		t.Errorf("Reason() = %s, want %s", Reason(err), reason)
	}
	d := Detail(err)
	if len(d) > MaxDetailBytes || !utf8.ValidString(d) {
		t.Errorf("Detail is %d bytes or invalid UTF-8", len(d))
	}
	for _, s := range append(secrets, "SECRET") {
		if strings.Contains(d, s) {
			t.Errorf("Detail %q echoes the payload value %q", d, s)
		}
	}
}

func TestReasonsComplete(t *testing.T) {
	want := []string{
		ReasonTooLarge, ReasonEmpty, ReasonInvalidJSON, ReasonInvalidUTF8, ReasonMissingField,
		ReasonInvalidField, ReasonUnknownType, ReasonUnknownObject, ReasonDuplicateKey, ReasonTooDeep,
		ReasonUnknownTable, ReasonInternal,
	}
	if !slices.Equal(Reasons, want) {
		t.Errorf("Reasons = %v, want %v", Reasons, want)
	}
	for _, r := range Reasons {
		if r == "" || strings.ToLower(r) != r || strings.ContainsAny(r, " -.") {
			t.Errorf("reason %q is not a snake_case label", r)
		}
	}
}

// TestEveryReasonProduced runs every bad case of both decoders and checks
// that together they produce every reason but internal.
func TestEveryReasonProduced(t *testing.T) {
	seen := map[string]bool{}
	ed := newEnvelope(t, DecoderOptions{})
	for _, c := range envelopeBadCases() {
		_, err := ed.Decode(nil, []byte(c.in))
		seen[Reason(err)] = true
	}
	dd := newDebezium(t)
	for _, c := range debeziumBadCases() {
		_, err := dd.Decode([]byte(c.key), c.value())
		seen[Reason(err)] = true
	}
	for _, r := range Reasons {
		if r != ReasonInternal && !seen[r] {
			t.Errorf("no bad case produces reason %s", r)
		}
	}
}

func TestDecoderOptions(t *testing.T) {
	s := crm.DefaultSchema()
	for _, c := range []struct {
		name string
		opts DecoderOptions
		err  string
	}{
		{"no schema", DecoderOptions{}, "Schema is required"},
		{"negative bytes", DecoderOptions{Schema: s, MaxBytes: -1}, "must not be negative"},
		{"negative depth", DecoderOptions{Schema: s, MaxDepth: -1}, "must not be negative"},
		{"negative elements", DecoderOptions{Schema: s, MaxElements: -1}, "must not be negative"},
		{"depth too small", DecoderOptions{Schema: s, MaxDepth: 3}, "below the minimum of 8"},
		{"defaults", DecoderOptions{Schema: s}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := NewEnvelopeDecoder(c.opts)
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				o := d.opts
				if o.MaxBytes != 1<<20 || o.MaxDepth != 32 || o.MaxElements != 4096 || o.Limits != crm.DefaultLimits {
					t.Errorf("defaults: %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %v, want one containing %q", err, c.err)
			}
		})
	}
	d, err := NewEnvelopeDecoder(DecoderOptions{Schema: s, Limits: crm.Limits{MaxListLen: 10000}})
	if err != nil {
		t.Fatal(err)
	}
	if d.opts.MaxElements != 10000 {
		t.Errorf("MaxElements = %d, want it raised to MaxListLen 10000", d.opts.MaxElements)
	}
}

// TestValidateAgreesWithEncodingJSON checks the syntax verdict of
// precheck's validating pass against encoding/json on hand-picked inputs,
// and that keys are compared unescaped as encoding/json unescapes them
// (jsonx's TestUnquote checks the unescaping itself).
func TestValidateAgreesWithEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`, ` {"a":1} `, `{"a":[1,2,{"b":null}],"c":true,"d":false}`, `{"a":-0.5e+10}`, `{"a":0}`,
		`{"a":01}`, `{"a":+1}`, `{"a":.5}`, `{"a":1.}`, `{"a":1e}`, `{"a":0x10}`, `{"a":NaN}`, `{"a":Infinity}`,
		`{"a":1,}`, `{"a":[1,]}`, `{'a':1}`, `{"a":1}/**/`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`,
		`{"a" 1}`, `{"a":1 "b":2}`, `{"a":tru}`, `{"a":nul}`, `{"a":[}`, `{"a":]}`, `{"a":"b}`, `{"a` + "\t" + `":1}`,
		`{"a":"\ud83d\ude00"}`, `{"a":"\"\\\/\b\f\n\r\t"}`, `{"a":1}{}`, `{"a":1}x`, "{\"a\":1}\n",
		`{"a":-}`, `{"a":-01}`, `{"a":1E5}`, `{"a":1e-5}`, `{"a":[[[]]]}`, `{,}`, `{"a":1,,"b":2}`,
	}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			_, err := validate([]byte(in), &DecoderOptions{MaxDepth: 64, MaxElements: 100}, nil, nil)
			if valid := json.Valid([]byte(in)); valid != (err == nil) {
				t.Errorf("validate says %v, encoding/json says valid=%v", err, valid)
			}
		})
	}
	// Keys that unescape alike are duplicates; so are the lone surrogates
	// encoding/json would turn into U+FFFD (rejected before that).
	for _, c := range []struct {
		in, reason string
	}{
		{`{"id":1,"\u0069d":2}`, ReasonDuplicateKey},
		{`{"a\/b":1,"a/b":2}`, ReasonDuplicateKey},
		{`{"\ud83d\ude00":1,"😀":2}`, ReasonDuplicateKey},
		{`{"a":"\ud800"}`, ReasonInvalidUTF8},
		{`{"a":"\udc00\ud800"}`, ReasonInvalidUTF8},
		{`{"a":"\ud800\u0041"}`, ReasonInvalidUTF8},
		{`{"\ud800":1}`, ReasonInvalidUTF8},
		{`{"a":"\ud83d\ude00","b":"é","c":"\u00e9"}`, ""},
	} {
		t.Run(c.in, func(t *testing.T) {
			_, err := validate([]byte(c.in), &DecoderOptions{MaxDepth: 64, MaxElements: 100}, nil, nil)
			if got := reasonOf(err); got != c.reason {
				t.Errorf("reason %q (%v), want %q", got, err, c.reason)
			}
		})
	}
}

func reasonOf(err *DecodeError) string {
	if err == nil {
		return ""
	}
	return err.Reason
}

// TestBigObjectDuplicates covers the map jsonx.Validate switches to past
// 32 keys.
func TestBigObjectDuplicates(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"record":{`)
	for i := range 200 {
		fmt.Fprintf(&b, `"f%d":%d,`, i, i)
	}
	base := b.String()
	for _, c := range []struct {
		name, tail, reason string
	}{
		{"no duplicate", `"last":1}}`, ""},
		{"duplicate of an early key", `"f3":1}}`, ReasonDuplicateKey},
		{"duplicate of a late key", `"f150":1}}`, ReasonDuplicateKey},
		{"escaped duplicate", `"f\u0031":1}}`, ReasonDuplicateKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := validate([]byte(base+c.tail), &DecoderOptions{MaxDepth: 32, MaxElements: 4096}, envelopeKeys, nil)
			if got := reasonOf(err); got != c.reason {
				t.Errorf("reason %q (%v), want %q", got, err, c.reason)
			}
		})
	}
}

// TestHugeArrayRejectedCheaply checks that a 10^6-element array is
// rejected by the size limit, and with a big MaxBytes by the element
// limit, quickly and without allocating in proportion to it.
func TestHugeArrayRejectedCheaply(t *testing.T) {
	arr := "[" + strings.Repeat("0,", 1_000_000-1) + "0]"
	for _, c := range []struct {
		name   string
		opts   DecoderOptions
		value  string
		reason string
		msg    string
	}{
		{"size limit", DecoderOptions{}, `{"id":"e","tags":` + arr + `}`, ReasonTooLarge, "over the limit of 1048576"},
		{"element limit, unknown key", DecoderOptions{MaxBytes: 64 << 20}, `{"id":"e","tags":` + arr + `}`, ReasonTooLarge, "array tags has more than the limit of 4096 elements"},
		{"element limit, record field", DecoderOptions{MaxBytes: 64 << 20}, `{"id":"e","type":"record.created","time":"2026-01-01T00:00:00Z","object":"opportunity","record":{"id":"o","competitors":` + arr + `}}`, ReasonTooLarge, "array record.competitors has more than the limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newEnvelope(t, c.opts)
			value := []byte(c.value)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := d.Decode(nil, value)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			checkReject(t, err, c.reason, c.msg)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("allocated %d bytes rejecting the message", alloc)
			}
			if elapsed > time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
	// Within MaxElements, the record's list limit applies.
	d := newEnvelope(t, DecoderOptions{Schema: customSchema(t)})
	list := `["` + strings.Repeat(`x","`, 1500) + `x"]`
	_, err := d.Decode(nil, []byte(`{"id":"e","type":"record.created","time":"2026-01-01T00:00:00Z","object":"opportunity","record":{"id":"o","competitors":`+list+`}}`))
	checkReject(t, err, ReasonInvalidField, "record.competitors: list of 1501 elements is over the limit of 1000")
}

func TestDeepNestingRejectedCheaply(t *testing.T) {
	for _, n := range []int{33, 100_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			v := `{"id":"e","x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
			_, err := newEnvelope(t, DecoderOptions{}).Decode(nil, []byte(v))
			checkReject(t, err, ReasonTooDeep, "nesting deeper than the limit of 32 at x[]")
		})
	}
	v := `{"id":"e","x":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`
	if _, err := validate([]byte(v), &DecoderOptions{MaxDepth: 32, MaxElements: 10}, nil, nil); err != nil {
		t.Errorf("depth 32 rejected: %v", err)
	}
}

// BenchmarkPrecheck measures the checks common to the decoders on an
// envelope of about 600 bytes.
//
//	go test -run '^$' -bench Precheck -benchmem ./ingest/
func BenchmarkPrecheck(b *testing.B) {
	data, err := os.ReadFile("testdata/bench_opportunity.json")
	if err != nil {
		b.Fatal(err)
	}
	o, err := DecoderOptions{Schema: crm.DefaultSchema()}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := precheck(data, &o, envelopeKeys); err != nil {
			b.Fatal(err)
		}
	}
}
