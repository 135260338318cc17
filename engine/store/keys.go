package store

import (
	"strconv"
	"strings"
)

// The Redis keys of the state. Every key but the due-timer queue is
// namespaced by workspace with a hash tag, so that the keys one script
// touches share a slot: PREFIX{WORKSPACE}:KIND:... Running deployments
// hold data under these names: they never change.
//
//	PREFIX{WS}:a:ACTION_ID               dedup claim: p|TOKEN|LEASE_MS, or d (done)
//	PREFIX{WS}:e:LEN(FLOW):FLOW:PERSON   enrollment: ACTION_ID|UNTIL_MS (0: forever)
//	PREFIX{WS}:c:AUTOMATION:RECORD       cooldown: EVENT_ID|UNTIL_MS
//	PREFIX{WS}:r:OBJECT:RECORD           record snapshot (snapshot.go)
//	PREFIX{WS}:t:OBJECT:FIELD:RECORD     timer: DATE_MS|FIRED_MS|SEEN_MS|SIG (the last two absent on timers armed before catch_up)
//	PREFIX timers                        due-timer queue: timer keys by next due
//	PREFIX{WS}:k:OBJECT                  known records: a set of record ids
//	PREFIX{WS}:w:OBJECT:NAME             walk (walk.go): hash of mark, target, cursor, lease (TOKEN|UNTIL_MS)
//
// The workspace "" is written "~", which is no valid workspace name.
type keys struct{ prefix string }

func (k keys) ws(workspace string) string {
	if workspace == "" {
		workspace = "~" // not a valid workspace name, so no collision
	}
	return k.prefix + "{" + workspace + "}:"
}

func (k keys) action(ws, actionID string) string { return k.ws(ws) + "a:" + actionID }

func (k keys) enroll(ws, flow, person string) string {
	return k.ws(ws) + "e:" + strconv.Itoa(len(flow)) + ":" + flow + ":" + person
}

func (k keys) cooldown(ws, automation, record string) string {
	return k.ws(ws) + "c:" + automation + ":" + record
}

func (k keys) record(r RecordRef) string { return k.ws(r.Workspace) + "r:" + r.Object + ":" + r.ID }

func (k keys) timer(t TimerRef) string {
	return k.ws(t.Workspace) + "t:" + t.Object + ":" + t.Field + ":" + t.RecordID
}

func (k keys) timerQueue() string { return k.prefix + "timers" }

func (k keys) known(ws, object string) string { return k.ws(ws) + "k:" + object }

func (k keys) walk(w WalkRef) string { return k.ws(w.Workspace) + "w:" + w.Object + ":" + w.Name }

// noCooldown and noEnroll stand in the claim script's keys for a claim
// without cooldown and an action without enrollment (never read).
func (k keys) noCooldown(ws string) string { return k.ws(ws) + "nocooldown" }
func (k keys) noEnroll(ws string) string   { return k.ws(ws) + "noenroll" }

// parseTimer splits a timer key into its workspace, object, date field
// and record id (object and field names hold no colon; ids may).
func (k keys) parseTimer(key string) (TimerRef, bool) {
	var t TimerRef
	rest, found := strings.CutPrefix(key, k.prefix+"{")
	if !found {
		return t, false
	}
	t.Workspace, rest, found = strings.Cut(rest, "}:t:")
	if !found {
		return t, false
	}
	if t.Workspace == "~" {
		t.Workspace = ""
	}
	t.Object, rest, found = strings.Cut(rest, ":")
	if !found {
		return t, false
	}
	t.Field, t.RecordID, found = strings.Cut(rest, ":")
	return t, found
}

// splitValue splits a value VALUE|MS into its string and its number, at
// the last bar (the string may hold one).
func splitValue(v string) (string, int64, bool) {
	i := strings.LastIndexByte(v, '|')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(v[i+1:], 10, 64)
	return v[:i], n, err == nil
}

// parseTimerValue reads a timer's value: the date it was armed for, the
// time up to which its automations have fired, when its date was first
// seen and the signature of the automations it was armed for,
// "DATEMS|FIREDMS|SEENMS|SIG" (seen 0 and sig "" when the value has only
// the first two).
func parseTimerValue(v string) (date, fired, seen int64, sig string, ok bool) {
	parts := strings.SplitN(v, "|", 4)
	if len(parts) < 2 {
		return 0, 0, 0, "", false
	}
	date, err1 := strconv.ParseInt(parts[0], 10, 64)
	fired, err2 := strconv.ParseInt(parts[1], 10, 64)
	var err3 error
	if len(parts) > 2 {
		seen, err3 = strconv.ParseInt(parts[2], 10, 64)
	}
	if len(parts) > 3 {
		sig = parts[3]
	}
	return date, fired, seen, sig, err1 == nil && err2 == nil && err3 == nil
}
