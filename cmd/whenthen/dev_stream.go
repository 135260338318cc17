package main

// The sample event stream of `whenthen dev`: an events file whose times are
// placeholders, resolved when each line is sent, so that the story plays
// out in real time whenever it is run.
//
// The file is JSON Lines (one event of docs/events.md per line) with two
// additions:
//
//   - A line whose first non-blank character is '#' is a comment, and a
//     blank line is skipped: neither is sent.
//   - {{...}} inside a line is replaced before the line is sent:
//
//     {{now}}          the time the line is sent, RFC 3339 in UTC
//     {{now-20d}}      shifted by a Go duration; "d" (24h days) is allowed
//     {{date(ID)}}     a value for the date field of date automation ID
//                      that makes its timer due at the latest possible time
//                      at or before now+3s: now+3s itself for a trigger
//                      without "at", the last local "at" time of day (up to
//                      a day ago) for one with it
//     {{due(ID)-1m}}   that due time, shifted (an event armed after its
//                      record's due time arms nothing: use an event time
//                      before it)
//
//   - A line "#! tick ID" is a directive, not an event: once the service
//     has processed every line sent before it, the built-in schedule ID is
//     rewound to just before its latest tick, as if the service had been
//     down at that tick: the timer loop runs the tick at once, late, over
//     the records the stream has created (a weekly schedule would
//     otherwise not tick during a demo).
//
// Everything else on a line is sent byte for byte, malformed lines included.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/whenthen/whenthen/rules"
)

// dateLead is how far ahead of the send time {{date(ID)}} aims the due
// time of a date trigger.
const dateLead = 3 * time.Second

// streamLine is one event template of an events file, or a directive.
type streamLine struct {
	n    int    // line number, from 1
	text string // the template
	tick string // the schedule of a "#! tick ID" directive
}

// readStream reads the event templates of an events file.
func readStream(path string) ([]streamLine, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []streamLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		s := strings.TrimSpace(sc.Text())
		if d, ok := strings.CutPrefix(s, "#!"); ok {
			f := strings.Fields(d)
			if len(f) != 2 || f[0] != "tick" {
				return nil, fmt.Errorf("line %d: unknown directive %q (want #! tick AUTOMATION)", n, s)
			}
			lines = append(lines, streamLine{n: n, tick: f[1]})
			continue
		}
		if s != "" && !strings.HasPrefix(s, "#") {
			lines = append(lines, streamLine{n: n, text: s})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return lines, nil
}

var placeholderRE = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// placeholderExprRE is what may stand inside {{ }}: a base and an
// optional signed offset.
var placeholderExprRE = regexp.MustCompile(`^\s*(now|due\(\s*([a-z0-9][a-z0-9._-]*)\s*\)|date\(\s*([a-z0-9][a-z0-9._-]*)\s*\))\s*(?:([+-])\s*([0-9][0-9a-zµ.]*))?\s*$`)

// expandLine resolves the placeholders of a line sent at now, finding
// date automations in set.
func expandLine(line string, now time.Time, set *rules.Set) (string, error) {
	var firstErr error
	out := placeholderRE.ReplaceAllStringFunc(line, func(ph string) string {
		if firstErr != nil {
			return ph
		}
		t, err := resolvePlaceholder(ph[2:len(ph)-2], now, set)
		if err != nil {
			firstErr = fmt.Errorf("%s: %w", ph, err)
			return ph
		}
		return t.UTC().Format(time.RFC3339Nano)
	})
	return out, firstErr
}

func resolvePlaceholder(expr string, now time.Time, set *rules.Set) (time.Time, error) {
	m := placeholderExprRE.FindStringSubmatch(expr)
	if m == nil {
		return time.Time{}, fmt.Errorf("want now, due(ID) or date(ID), optionally followed by +DURATION or -DURATION")
	}
	var base time.Time
	switch {
	case m[1] == "now":
		base = now
	default:
		id := m[2] + m[3]
		d, err := dateTrigger(set, id)
		if err != nil {
			return time.Time{}, err
		}
		value, due, err := demoDate(d, now)
		if err != nil {
			return time.Time{}, fmt.Errorf("automation %s: %w", id, err)
		}
		base = due
		if m[3] != "" {
			base = value
		}
	}
	if m[4] == "" {
		return base, nil
	}
	off, err := parseOffset(m[5])
	if err != nil {
		return time.Time{}, err
	}
	if m[4] == "-" {
		off = -off
	}
	return base.Add(off), nil
}

// dateTrigger returns the date trigger of automation id.
func dateTrigger(set *rules.Set, id string) (*rules.DateTrigger, error) {
	a, ok := set.Automation(id)
	if !ok {
		return nil, fmt.Errorf("no automation %s in the rules", id)
	}
	if a.Trigger.Kind != rules.TriggerDate || a.Trigger.Date == nil {
		return nil, fmt.Errorf("automation %s has a %s trigger, not a date trigger", id, a.Trigger.Kind)
	}
	return a.Trigger.Date, nil
}

// demoDate returns a value for d's field and the due time it gives
// (d.Due(value) == due): due is now+dateLead, or for a trigger with a time
// of day the latest such local time at or before now+dateLead.
func demoDate(d *rules.DateTrigger, now time.Time) (value, due time.Time, err error) {
	target := now.Add(dateLead).Truncate(time.Second)
	if d.HasAt {
		loc := d.Location
		if loc == nil {
			loc = time.UTC
		}
		local := target.In(loc)
		at := time.Date(local.Year(), local.Month(), local.Day(), d.AtHour, d.AtMinute, 0, 0, loc)
		if at.After(target) {
			at = time.Date(local.Year(), local.Month(), local.Day()-1, d.AtHour, d.AtMinute, 0, 0, loc)
		}
		target = at
	}
	value = target.Add(-d.Offset)
	// The engine arms the timer at d.Due(value); make sure that is target.
	if got := d.Due(value); !got.Equal(target) {
		return time.Time{}, time.Time{}, fmt.Errorf("no date found whose due time is %s (got %s)", target.Format(time.RFC3339), got.Format(time.RFC3339))
	}
	return value, target, nil
}

// parseOffset parses a Go duration that may start with a number of days:
// "20d", "1d12h", "90s", "1.5h".
func parseOffset(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad offset %q: want a whole number of days before \"d\"", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad offset: %w", err)
	}
	return days + d, nil
}

// eventSummary is what dev reads of an event it sends: its key and a
// one-line description.
type eventSummary struct {
	key  []byte // the record id (or related account, or call); nil if none
	desc string
}

// summarizeEvent picks the Kafka key of an event (the record id, as
// docs/events.md "The envelope" says; for a tracker event the account id, else the call id) and
// describes it. A line that is not a JSON object has no key.
func summarizeEvent(line string) eventSummary {
	var ev struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Object  string `json:"object"`
		Partial bool   `json:"partial"`
		Record  struct {
			ID string `json:"id"`
		} `json:"record"`
		Account struct {
			ID string `json:"id"`
		} `json:"account"`
		Tracker struct {
			Name   string `json:"name"`
			CallID string `json:"call_id"`
		} `json:"tracker"`
		Schedule struct {
			Name string `json:"name"`
		} `json:"schedule"`
		Call struct {
			ID        string `json:"id"`
			AccountID string `json:"account_id"`
		} `json:"call"`
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		return eventSummary{desc: "malformed line (" + shorten(line, 48) + ")"}
	}
	var key string
	var b strings.Builder
	b.WriteString(ev.Type)
	switch {
	case ev.Type == "tracker.detected":
		key = ev.Account.ID
		if key == "" {
			key = ev.Tracker.CallID
		}
		fmt.Fprintf(&b, " %q", ev.Tracker.Name)
		if ev.Tracker.CallID != "" {
			fmt.Fprintf(&b, " call %s", ev.Tracker.CallID)
		}
		if ev.Account.ID != "" {
			fmt.Fprintf(&b, " account/%s", ev.Account.ID)
		}
	case ev.Type == "call.processed":
		// Keyed by the account, like a tracker event, so that a call's
		// follow-ups stay in order with the account's other events.
		key = ev.Call.AccountID
		if key == "" {
			key = ev.Call.ID
		}
		fmt.Fprintf(&b, " call %s", ev.Call.ID)
		if ev.Call.AccountID != "" {
			fmt.Fprintf(&b, " account/%s", ev.Call.AccountID)
		}
	default:
		key = ev.Record.ID
		if ev.Type == "schedule.fired" {
			fmt.Fprintf(&b, " %s", ev.Schedule.Name)
		}
		fmt.Fprintf(&b, " %s/%s", ev.Object, ev.Record.ID)
		if ev.Partial {
			b.WriteString(" (partial)")
		}
	}
	fmt.Fprintf(&b, " %s", ev.ID)
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	return eventSummary{key: k, desc: b.String()}
}

// shorten cuts s to about n bytes, at a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// checkLine checks a line before anything starts: its placeholders
// resolve, and a tick directive names a built-in schedule of set.
func checkLine(l streamLine, set *rules.Set) error {
	if l.tick != "" {
		a, ok := set.Automation(l.tick)
		if !ok || a.Trigger.Cron == nil {
			return fmt.Errorf("#! tick %s: no built-in schedule (when: {schedule: {cron: ...}}) has that id", l.tick)
		}
		return nil
	}
	_, err := expandLine(l.text, time.Now(), set)
	return err
}
