package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestLogsHoldNoFieldValues runs the service with JSON logs at debug
// level over events whose every field value (outside ids) carries a
// unique marker: valid events that run automations, one whose condition
// fails on its value, partial and tracker events, and messages that are
// dead-lettered for their values. No log line may hold a marker.
func TestLogsHoldNoFieldValues(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	writeFile(t, dir, "acme.yaml", specRules+`
  - id: failing
    when: {record: opportunity}
    if: int(record.name) > 0
    fire: every_time
    then:
      brief: {kind: opportunity, recipients: ["user:u-1"]}
  - id: failing-time
    when: {record: opportunity}
    if: timestamp(record.name) < now || duration(record.stage) > duration("1h")
    fire: every_time
    then:
      brief: {kind: opportunity, recipients: ["user:u-1"]}
  - id: stage-match
    when: {record: opportunity}
    if: record.stage.matches("^M[0-9]+") && record.stage != "x"
    fire: every_time
    then:
      brief: {kind: opportunity, recipients: [owner]}
`)
	var logs testenv.Buffer
	o := options(t, c, dir, "")
	o.Logger, o.LogOutput, o.LogFormat, o.LogLevel = nil, &logs, "json", "debug"
	s, _ := start(t, o)
	const tm = `"time":"2026-11-24T10:00:00Z","workspace":"acme"`
	markers := []string{"M1name", "M2stage", "M3email", "M4title", "M5partname", "M6trackname", "M7badtime",
		"M8badamount", "M9unknown", "M10before", "M11role", "M12region"}
	c.Produce(t, inputTopic,
		event("006A1", `{"id":"evt-1","type":"record.created",`+tm+`,"object":"opportunity","record":{"id":"006A1","name":"M1name","stage":"M2stage","amount":250000,"owner_id":"u-7","region_x":"M9unknown"}}`),
		event("006A1", `{"id":"evt-2","type":"record.updated",`+tm+`,"object":"opportunity","record":{"id":"006A1","name":"M1name","stage":"Closed Won","amount":250000,"owner_id":"u-7"},"before":{"stage":"M10before"}}`),
		event("L1", `{"id":"evt-3","type":"record.created",`+tm+`,"object":"lead","record":{"id":"L1","score":80,"email":"M3email"}}`),
		event("C1", `{"id":"evt-4","type":"record.updated",`+tm+`,"object":"contact","partial":true,"record":{"id":"C1","title":"M4title"}}`),
		event("call-1", `{"id":"evt-5","type":"tracker.detected",`+tm+`,"tracker":{"name":"Upsell opportunity","call_id":"call-1","confidence":0.9,`+
			`"participants":[{"contact_id":"c1","role":"customer","name":"M5partname"},{"contact_id":"c2","role":"M11role"}]},"account":{"id":"A1","region":"M12region"}}`),
		event("call-2", `{"id":"evt-6","type":"tracker.detected",`+tm+`,"tracker":{"name":"M6trackname","call_id":"call-2"}}`),
		event("bad1", `{"id":"evt-7","type":"record.created","time":"M7badtime","object":"lead","record":{"id":"L2"}}`),
		event("bad2", `{"id":"evt-8","type":"record.created",`+tm+`,"object":"opportunity","record":{"id":"O2","amount":"M8badamount"}}`),
		event("bad3", `{"id":"evt-9","type":"record.created",`+tm+`,"object":"opportunity","record":{"id":"O3","name":"M1name`+strings.Repeat("x", 70000)+`"}}`),
	)
	testenv.WaitFor(t, 20*time.Second, "every event committed", func() bool { return allCommitted(c) })
	if n := c.Count(actions.DefaultDLQTopic); n != 3 {
		t.Errorf("%d dead letters, want 3", n)
	}
	if n := testenv.Metric(t, s.Gatherer(), "whenthen_eval_errors_total"); n == 0 {
		t.Error("the failing condition did not fail: the error path was not logged")
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"DEBUG"`) || !strings.Contains(out, "undecodable message") {
		t.Fatalf("the log lacks debug records or the dead-letter warnings:\n%s", out)
	}
	lines := 0
	for line := range strings.Lines(out) {
		lines++
		for _, m := range markers {
			if strings.Contains(line, m) {
				t.Errorf("a log line holds the field value %s: %s", m, line)
			}
		}
	}
	t.Logf("%d log lines scanned for %d markers", lines, len(markers))
}
