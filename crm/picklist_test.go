package crm

import (
	"strings"
	"testing"
)

// TestSchemaValues: the values a schema file lists, on custom and
// standard string fields, and every way of getting them wrong.
func TestSchemaValues(t *testing.T) {
	s, err := ParseSchema("s.yaml", []byte(`objects:
  opportunity:
    fields:
      stage: {values: [Prospecting, Negotiation, Closed Won, Closed Lost]}
      segment: {type: string, values: [SMB, "Mid-Market", 12]}
      seats: {type: int}
      region_code: string
  lead:
    fields:
      status:
        values:
          - Open
          - Working
`))
	if err != nil {
		t.Fatal(err)
	}
	opp, _ := s.Object(ObjOpportunity)
	lead, _ := s.Object(ObjLead)
	for _, tt := range []struct {
		obj   *Object
		field string
		kind  Kind
		want  string // values joined by |; "" for none
	}{
		{opp, "stage", KindString, "Prospecting|Negotiation|Closed Won|Closed Lost"},
		{opp, "segment", KindString, "SMB|Mid-Market|12"},
		{opp, "seats", KindInt, ""},
		{opp, "region_code", KindString, ""},
		{opp, "type", KindString, ""},
		{lead, "status", KindString, "Open|Working"},
	} {
		f, ok := tt.obj.Field(tt.field)
		if !ok || f.Kind != tt.kind || strings.Join(f.Values, "|") != tt.want || (f.Values == nil) != (tt.want == "") {
			t.Errorf("%s.%s: %v %+v", tt.obj.Name, tt.field, ok, f)
		}
	}
	if !s.HasValues() || DefaultSchema().HasValues() {
		t.Error("HasValues")
	}
	// The standard schema of another load is left alone.
	if f, _ := stdField(t, ObjOpportunity, "stage"); f.Values != nil {
		t.Error("the default schema has values")
	}

	for _, tt := range []struct {
		name, schema, want string
	}{
		{"values of a non-string custom field", "objects:\n  opportunity:\n    fields:\n      seats: {type: int, values: [a]}\n",
			"s.yaml:4:34: field opportunity.seats: values apply to string fields only, not int"},
		{"values of a non-string standard field", "objects:\n  opportunity:\n    fields:\n      amount: {values: [a]}\n",
			"s.yaml:4:24: field opportunity.amount is a double; values apply to string fields only"},
		{"values of an unknown field without a type", "objects:\n  opportunity:\n    fields:\n      stge: {values: [a]}\n",
			`s.yaml:4:7: field opportunity.stge is not a standard field: declare it with its type (stge: {type: string, values: [...]})`},
		{"a type for a standard field", "objects:\n  opportunity:\n    fields:\n      stage: {type: string, values: [a]}\n",
			`s.yaml:4:7: field opportunity.stage is a standard field; to list its values leave out type: stage: {values: [...]}`},
		{"a type for a standard non-string field", "objects:\n  opportunity:\n    fields:\n      amount: {type: double}\n",
			`s.yaml:4:7: field opportunity.amount is a standard field`},
		{"an empty list", "objects:\n  lead:\n    fields:\n      status: {values: []}\n",
			"s.yaml:4:24: field lead.status: values must be a non-empty list of strings"},
		{"a scalar", "objects:\n  lead:\n    fields:\n      status: {values: Open}\n",
			"s.yaml:4:24: field lead.status: values must be a non-empty list of strings"},
		{"a value twice, an empty one, a list", "objects:\n  lead:\n    fields:\n      status: {values: [Open, Open, \"\", ~, [x]]}\n",
			"s.yaml:4:31: field lead.status: value \"Open\" is listed twice\n" +
				"s.yaml:4:37: field lead.status: a value is empty (\"\", the value of an absent field, is always allowed and not listed)\n" +
				"s.yaml:4:41: field lead.status: a value is empty (\"\", the value of an absent field, is always allowed and not listed)\n" +
				"s.yaml:4:44: field lead.status: a value must be a string, not a list"},
		{"an unknown key", "objects:\n  lead:\n    fields:\n      status: {value: [Open]}\n",
			`s.yaml:4:16: field lead.status: unknown key "value" (want type, values)`},
		{"neither type nor values", "objects:\n  lead:\n    fields:\n      status: {}\n",
			"s.yaml:4:15: field lead.status: give its type, its values, or both (status: {type: string, values: [...]})"},
		{"a bad type", "objects:\n  lead:\n    fields:\n      x: {type: integer}\n",
			`s.yaml:4:17: field lead.x: unknown type "integer" (want string, int, double, bool, timestamp, list(string) or map(string, dyn))`},
		{"values twice", "objects:\n  lead:\n    fields:\n      status: {values: [a]}\n  lead:\n    fields:\n      status: {values: [b]}\n",
			"s.yaml:7:7: field lead.status: values given twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSchema("s.yaml", []byte(tt.schema))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
}

func stdField(t *testing.T, obj, name string) (*Field, bool) {
	t.Helper()
	o, _ := DefaultSchema().Object(obj)
	return o.Field(name)
}

func TestValuesText(t *testing.T) {
	f := &Field{Values: []string{"a", "b"}}
	if got := f.ValuesText(); got != "a, b" {
		t.Error(got)
	}
	f.Values = strings.Split("1 2 3 4 5 6 7 8 9 10 11 12 13 14", " ")
	if got := f.ValuesText(); got != "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, … 2 more" {
		t.Error(got)
	}
}
