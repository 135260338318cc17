package store

import (
	"strconv"
	"strings"
)

// The Redis keys of the state, in one of two layouts; keys derives them.
//
// The single-Redis layout namespaces every key but the due-timer queue by
// workspace with a hash tag, PREFIX{WORKSPACE}:KIND:... Running
// deployments hold data under these names: they never change.
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
// The cluster layout (Redis Cluster) keeps the claim keys (a, e, c) and
// the walks (w) as above: one claim script decides them together, so a
// workspace's claims share its slot. What grows with the records of a
// workspace is spread over Shards record shards, each its own hash tag:
// a record's shard is FNV-1a of its id modulo Shards, and a timer's shard
// FNV-1a of its workspace and record id. The due-timer queue is one per
// timer shard, in the slot of its timers, so that arming, claiming and
// acknowledging timers are single-slot scripts; ClaimDue visits every
// shard.
//
//	PREFIX{WS:sN}:r:OBJECT:RECORD            record snapshot
//	PREFIX{WS:sN}:k:OBJECT                   known records of shard N
//	PREFIX{timers:N}:t:WS:OBJECT:FIELD:RECORD  timer (value as above)
//	PREFIX{timers:N}:q                       due-timer queue of shard N
//
// Workspace names hold no colon ([A-Za-z0-9._-]), so no tag of one kind
// is a tag of another.
//
// The workspace "" is written "~", which is no valid workspace name.
type keys struct {
	prefix string
	// cluster chooses the cluster layout.
	cluster bool
}

// Shards is the number of record shards (and of timer shards) of the
// cluster layout. Data is stored under it: it never changes.
const Shards = 64

func wsName(workspace string) string {
	if workspace == "" {
		return "~" // not a valid workspace name, so no collision
	}
	return workspace
}

func (k keys) ws(workspace string) string {
	return k.prefix + "{" + wsName(workspace) + "}:"
}

// fnv32a is FNV-1a of the strings, one after the other.
func fnv32a(parts ...string) uint32 {
	h := uint32(2166136261)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint32(p[i])
			h *= 16777619
		}
	}
	return h
}

// recordShard is the record shard of a record id.
func recordShard(id string) int { return int(fnv32a(id) % Shards) }

// timerShard is the timer shard of a workspace's record.
func timerShard(ws, id string) int { return int(fnv32a(ws, "\x00", id) % Shards) }

// shardTag is the prefix of the keys of a workspace's record shard.
func (k keys) shardTag(ws string, shard int) string {
	return k.prefix + "{" + wsName(ws) + ":s" + strconv.Itoa(shard) + "}:"
}

func (k keys) timerTag(shard int) string {
	return k.prefix + "{timers:" + strconv.Itoa(shard) + "}:"
}

func (k keys) action(ws, actionID string) string { return k.ws(ws) + "a:" + actionID }

func (k keys) enroll(ws, flow, person string) string {
	return k.ws(ws) + "e:" + strconv.Itoa(len(flow)) + ":" + flow + ":" + person
}

func (k keys) cooldown(ws, automation, record string) string {
	return k.ws(ws) + "c:" + automation + ":" + record
}

func (k keys) record(r RecordRef) string {
	return k.recordKey(r.Workspace, r.ID, "r:", r.Object, ":", r.ID)
}

// recordKey is the tag of the keys kept with a record (ws's on a single
// Redis, its record shard's, shardTag, in the cluster layout) followed by
// parts, built in one allocation: record and known-record keys are made
// for every snapshot saved or loaded.
func (k keys) recordKey(ws, id string, parts ...string) string {
	ws = wsName(ws)
	n := len(k.prefix) + len(ws) + len("{:s00}:")
	for _, p := range parts {
		n += len(p)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(k.prefix)
	b.WriteByte('{')
	b.WriteString(ws)
	if k.cluster {
		b.WriteString(":s")
		b.WriteString(strconv.Itoa(recordShard(id)))
	}
	b.WriteString("}:")
	for _, p := range parts {
		b.WriteString(p)
	}
	return b.String()
}

func (k keys) timer(t TimerRef) string {
	if !k.cluster {
		return k.ws(t.Workspace) + "t:" + t.Object + ":" + t.Field + ":" + t.RecordID
	}
	return k.timerTag(timerShard(t.Workspace, t.RecordID)) + "t:" + wsName(t.Workspace) + ":" + t.Object + ":" + t.Field + ":" + t.RecordID
}

// timerQueue is the due-timer queue of a timer shard (the single-Redis
// layout has one queue: shard is ignored).
func (k keys) timerQueue(shard int) string {
	if !k.cluster {
		return k.prefix + "timers"
	}
	return k.timerTag(shard) + "q"
}

// tieKey is a timer's key in the single-Redis layout: due timers with
// the same score are claimed in its order in both layouts.
func (k keys) tieKey(t TimerRef) string {
	return keys{prefix: k.prefix}.timer(t)
}

// queueOf is the due-timer queue of a timer.
func (k keys) queueOf(t TimerRef) string {
	return k.timerQueue(timerShard(t.Workspace, t.RecordID))
}

// known is the set of known records of a workspace's object that holds
// id.
func (k keys) known(ws, object, id string) string { return k.recordKey(ws, id, "k:", object) }

// knownShard is the set of known records of a record shard (the
// single-Redis layout has one set: shard is ignored).
func (k keys) knownShard(ws, object string, shard int) string {
	if !k.cluster {
		return k.ws(ws) + "k:" + object
	}
	return k.shardTag(ws, shard) + "k:" + object
}

// shards is the number of due-timer queues, and of the known-record sets
// of an object: Shards in the cluster layout, one on a single Redis.
func (k keys) shards() int {
	if !k.cluster {
		return 1
	}
	return Shards
}

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
	if k.cluster {
		if _, rest, found = strings.Cut(rest, "}:t:"); !found {
			return t, false
		}
		t.Workspace, rest, found = strings.Cut(rest, ":")
	} else {
		t.Workspace, rest, found = strings.Cut(rest, "}:t:")
	}
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
