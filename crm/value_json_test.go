package crm

import (
	"encoding/json"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

func TestAppendValue(t *testing.T) {
	long := strings.Repeat("ab", 300)
	tests := []struct {
		name      string
		v         ref.Val
		limit     int
		want      string // exact, or "" to check the bounds only
		truncated bool
	}{
		{"short string", types.String("Closed Won"), 256, `"Closed Won"`, false},
		{"number", types.Double(250000), 256, `250000`, false},
		{"long string", types.String(long), 32, `"abababababababababababababa…"`, true},
		{"escapes", types.String(strings.Repeat(`"`, 100)), 40, "", true},
		{"multi-byte", types.String(strings.Repeat("日本語", 50)), 40, "", true},
		{"list", types.NewStringList(types.DefaultTypeAdapter, []string{"alpha", "beta", "gamma", "delta"}), 20, `["alpha","beta"]`, true},
		{"list fits", types.NewStringList(types.DefaultTypeAdapter, []string{"a"}), 20, `["a"]`, false},
		{"map", types.DefaultTypeAdapter.NativeToValue(map[string]any{"b": 2, "a": strings.Repeat("x", 40), "c": 3}), 30, `{"b":2,"c":3}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated, err := AppendValue([]byte("x"), tt.v, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			js := got[1:]
			if tt.want != "" && string(js) != tt.want || truncated != tt.truncated {
				t.Fatalf("got %s (truncated %v), want %s (%v)", js, truncated, tt.want, tt.truncated)
			}
			if len(js) > max(tt.limit, minValueBytes) || !json.Valid(js) {
				t.Fatalf("%s: %d bytes over %d, or invalid JSON", js, len(js), tt.limit)
			}
		})
	}
}
