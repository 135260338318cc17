package crm

import "testing"

// TestSchemaSyntaxError: a YAML mistake in a schema file is reported at
// its line and column, saying what it is.
func TestSchemaSyntaxError(t *testing.T) {
	_, err := ParseSchema("s.yaml", []byte("objects:\n  opportunity:\n    fields:\n      stage: {values: [Won, Lost}\n"))
	want := "s.yaml:4:33: invalid YAML: expected ']' to close the '[' at 4:23, found '}'"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
