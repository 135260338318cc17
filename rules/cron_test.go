package rules

import (
	"testing"
	"time"
)

func TestCron(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	c, err := ParseCron("0 9 * * MON", ny)
	if err != nil {
		t.Fatal(err)
	}
	// Monday 2026-11-30 09:00 in New York is 14:00 UTC.
	sun := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	if got, want := c.Next(sun), time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next %v, want %v", got, want)
	}
	tests := []struct {
		name        string
		since, upTo time.Time
		want        time.Time
	}{
		{"none yet", sun, sun.Add(24 * time.Hour), time.Time{}},
		{"the one due", sun, time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)},
		{"after downtime, the latest only", sun, time.Date(2027, 3, 3, 0, 0, 0, 0, time.UTC), time.Date(2027, 3, 1, 14, 0, 0, 0, time.UTC)},
		{"not the one at since", time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Time{}},
	}
	for _, tt := range tests {
		if got := c.Latest(tt.since, tt.upTo); !got.Equal(tt.want) {
			t.Errorf("%s: latest %v, want %v", tt.name, got, tt.want)
		}
	}
	every, _ := ParseCron("* * * * *", time.UTC)
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	if got := every.Latest(start, end); !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("minutely after six years: %v", got)
	}
	for _, bad := range []string{"", "61 * * * *", "* * *", "TZ=UTC 0 9 * * *", "@every 10s", "0 0 30 2 *", "@often"} {
		if _, err := ParseCron(bad, time.UTC); err == nil {
			t.Errorf("ParseCron(%q) accepted", bad)
		}
	}
	for _, good := range []string{"@daily", "@every 1h", "*/15 9-17 * * MON-FRI", "0 0 1 * *"} {
		if _, err := ParseCron(good, time.UTC); err != nil {
			t.Errorf("ParseCron(%q): %v", good, err)
		}
	}
}
