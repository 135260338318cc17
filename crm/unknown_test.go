package crm

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/whenthen/whenthen/internal/jsonx"
)

// TestRecordUnknown: the members that are no field are reported once per
// object and name, nested participants' too, by both readers; the record
// is the one ReadRecord and NewRecord build.
func TestRecordUnknown(t *testing.T) {
	s := DefaultSchema()
	opp, _ := s.Object(ObjOpportunity)
	for _, tt := range []struct {
		name string
		obj  *Object
		js   string
		want []UnknownField
	}{
		{"none", opp, `{"id":"o1","stage":"Won","amount":3}`, nil},
		{"two", opp, `{"id":"o1","stge":"Won","amount":3,"Amount":4,"stge":"x"}`,
			[]UnknownField{{"opportunity", "stge"}, {"opportunity", "Amount"}}},
		{"null and objects are members too", opp, `{"x":null,"y":{"z":1}}`,
			[]UnknownField{{"opportunity", "x"}, {"opportunity", "y"}}},
		{"nested", s.Tracker, `{"name":"t","transcript":"…","participants":[{"contact_id":"c","email":"e"},{"email":"f","phone":"g"}]}`,
			[]UnknownField{{"tracker", "transcript"}, {"participant", "email"}, {"participant", "phone"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := jsonx.Get()
			defer jsonx.Put(p)
			p.Reset([]byte(tt.js))
			var got []UnknownField
			r, err := tt.obj.ReadRecordUnknown(p, Limits{}, &got)
			if err != nil || p.Err() != nil {
				t.Fatal(err, p.Err())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadRecordUnknown: %v, want %v", got, tt.want)
			}
			plain, _ := tt.obj.DecodeRecord([]byte(tt.js), Limits{})
			if r.Equal(plain) != types.True {
				t.Error("a different record from ReadRecord")
			}
			d := json.NewDecoder(strings.NewReader(tt.js))
			d.UseNumber()
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			var fromMap []UnknownField
			if _, err := tt.obj.NewRecordUnknown(m, Limits{}, &fromMap); err != nil {
				t.Fatal(err)
			}
			// A map has no order: compare as sets.
			if fmt.Sprint(sortedUnknown(fromMap)) != fmt.Sprint(sortedUnknown(tt.want)) {
				t.Errorf("NewRecordUnknown: %v, want %v", fromMap, tt.want)
			}
		})
	}
}

func TestReadRecordUnknownAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector; make test also runs the allocation tests without it")
	}
	opp, _ := DefaultSchema().Object(ObjOpportunity)
	data := []byte(`{"id":"o1","stage":"Won","amount":3}`)
	p := jsonx.Get()
	defer jsonx.Put(p)
	var unknown []UnknownField
	read := func() {
		p.Reset(data)
		if _, err := opp.ReadRecordUnknown(p, Limits{}, &unknown); err != nil {
			t.Fatal(err)
		}
	}
	p.Reset(data)
	plain := testing.AllocsPerRun(100, func() {
		p.Reset(data)
		opp.ReadRecord(p, Limits{})
	})
	if n := testing.AllocsPerRun(100, read); n != plain || unknown != nil {
		t.Fatalf("%v allocations with nothing unknown, ReadRecord makes %v", n, plain)
	}
}

func sortedUnknown(l []UnknownField) []UnknownField {
	out := append([]UnknownField(nil), l...)
	sort.Slice(out, func(i, j int) bool { return out[i].Object+"."+out[i].Field < out[j].Object+"."+out[j].Field })
	return out
}
