package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps the engine's state in Redis: dedup claims, flow
// enrollments, cooldowns, record snapshots and date timers. Every decision
// that must be atomic across engine instances is one Lua script, and every
// script takes the engine's `now` as an argument, so that windows follow
// the injected clock (simulated time in `whenthen eval`) rather than the
// Redis server's. Redis TTLs only collect garbage.
//
// Keys are namespaced by workspace with a hash tag, so that the keys one
// script touches share a slot: PREFIX{WORKSPACE}:KIND:... The due-timer
// queue is one sorted set, PREFIX timers, whose members name their workspace.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    StoreTTLs
}

// StoreTTLs are how long state lives in Redis.
type StoreTTLs struct {
	// Dedup is how long an action id is remembered; it must be at least the
	// input topic's retention (a redelivery older than it is not caught).
	// Default 7 days.
	Dedup time.Duration
	// Snapshot is how long a record's last known state is kept after its
	// last event. Default 90 days.
	Snapshot time.Duration
	// Lease is how long an instance's unconfirmed claim (or a claimed timer)
	// holds before another instance may take it over. Default 30 s.
	Lease time.Duration
}

func (t StoreTTLs) withDefaults() StoreTTLs {
	if t.Dedup <= 0 {
		t.Dedup = 7 * 24 * time.Hour
	}
	if t.Snapshot <= 0 {
		t.Snapshot = 90 * 24 * time.Hour
	}
	if t.Lease <= 0 {
		t.Lease = 30 * time.Second
	}
	return t
}

// NewRedisStore wraps a go-redis client. prefix namespaces every key
// (default "wt:").
func NewRedisStore(rdb redis.UniversalClient, prefix string, ttl StoreTTLs) *RedisStore {
	if prefix == "" {
		prefix = "wt:"
	}
	return &RedisStore{rdb: rdb, prefix: prefix, ttl: ttl.withDefaults()}
}

// TTLs returns the store's settings.
func (s *RedisStore) TTLs() StoreTTLs { return s.ttl }

// Ping checks that Redis answers.
func (s *RedisStore) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func (s *RedisStore) ws(workspace string) string {
	if workspace == "" {
		workspace = "~" // not a valid workspace name, so no collision
	}
	return s.prefix + "{" + workspace + "}:"
}

func (s *RedisStore) actionKey(ws, actionID string) string { return s.ws(ws) + "a:" + actionID }
func (s *RedisStore) enrollKey(ws, flow, person string) string {
	return s.ws(ws) + "e:" + strconv.Itoa(len(flow)) + ":" + flow + ":" + person
}
func (s *RedisStore) cooldownKey(ws, automation, record string) string {
	return s.ws(ws) + "c:" + automation + ":" + record
}
func (s *RedisStore) recordKey(ws, object, id string) string {
	return s.ws(ws) + "r:" + object + ":" + id
}
func (s *RedisStore) timerKey(t timerRef) string {
	return s.ws(t.Workspace) + "t:" + t.Object + ":" + t.Field + ":" + t.RecordID
}
func (s *RedisStore) timerQueue() string { return s.prefix + "timers" }

// parseTimerKey splits a timer key into its workspace, object, date field
// and record id (object and field names hold no colon; ids may).
func (s *RedisStore) parseTimerKey(k string) (timerRef, bool) {
	var t timerRef
	rest, found := strings.CutPrefix(k, s.prefix+"{")
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

// timerValue is a timer's stored value: the date it was armed for and the
// time up to which its automations have fired, "DATEMS|FIREDMS".
func parseTimerValue(v string) (date, fired int64, ok bool) {
	d, f, found := strings.Cut(v, "|")
	if !found {
		return 0, 0, false
	}
	date, err1 := strconv.ParseInt(d, 10, 64)
	fired, err2 := strconv.ParseInt(f, 10, 64)
	return date, fired, err1 == nil && err2 == nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// ClaimStatus is what a claim found for one action.
type ClaimStatus uint8

// Claim results.
const (
	// ClaimNew: nobody had it; it is now ours, pending until confirmed.
	ClaimNew ClaimStatus = iota + 1
	// ClaimOurs: our own pending claim (a retried command).
	ClaimOurs
	// ClaimDone: already produced; a duplicate.
	ClaimDone
	// ClaimEnrolled: the person is enrolled in the flow by another action
	// within the re-enrollment window.
	ClaimEnrolled
)

// Claim asks for the right to emit one run's actions.
type Claim struct {
	Workspace string
	EventID   string
	// CooldownKey is set when the automation has a cooldown; the run is
	// refused if another event claimed it before CooldownUntil.
	CooldownKey   string
	CooldownUntil time.Time
	Targets       []ClaimTarget

	// Results.
	Cooldown bool // refused by the cooldown
	busy     bool // another instance holds a live claim: retry later
}

// ClaimTarget is one action of a run.
type ClaimTarget struct {
	ActionKey string
	ActionID  string
	// EnrollKey is set for flow actions: the person's enrollment in the flow,
	// held until EnrollUntil (zero: forever).
	EnrollKey   string
	EnrollUntil time.Time
	Status      ClaimStatus
}

var claimScript = redis.NewScript(`
local token, now, lease, eid = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local coolUntil, dedupTTL = tonumber(ARGV[5]), tonumber(ARGV[6])
local n = (#KEYS - 1) / 2
local function split(v)
  local sep = string.find(v, '|', 1, true)
  return string.sub(v, 1, sep - 1), tonumber(string.sub(v, sep + 1))
end
if coolUntil > 0 then
  local v = redis.call('GET', KEYS[1])
  if v then
    local ev, untilMs = split(v)
    if ev ~= eid and untilMs > now then return {'cooldown'} end
  end
end
local res = {}
for i = 1, n do
  local v = redis.call('GET', KEYS[2 * i])
  local st
  if not v then
    st = 'new'
  elseif v == 'd' then
    st = 'done'
  else
    local tok, leaseUntil = split(string.sub(v, 3))
    if tok == token then st = 'ours'
    elseif leaseUntil <= now then st = 'new'
    else return {'busy'} end
  end
  if st ~= 'done' then
    local base = 6 + 3 * (i - 1)
    local aid, enrollUntil = ARGV[base + 1], tonumber(ARGV[base + 2])
    if enrollUntil >= 0 then
      local ev = redis.call('GET', KEYS[2 * i + 1])
      if ev then
        local owner, untilMs = split(ev)
        if owner ~= aid and (untilMs == 0 or untilMs > now) then st = 'enrolled' end
      end
    end
  end
  res[i] = st
end
local emitted = 0
for i = 1, n do
  if res[i] == 'new' or res[i] == 'ours' then
    emitted = emitted + 1
    local base = 6 + 3 * (i - 1)
    local aid, enrollUntil, enrollTTL = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
    redis.call('SET', KEYS[2 * i], 'p|' .. token .. '|' .. (now + lease), 'PX', dedupTTL)
    if enrollUntil >= 0 then
      if enrollTTL > 0 then
        redis.call('SET', KEYS[2 * i + 1], aid .. '|' .. enrollUntil, 'PX', enrollTTL)
      else
        redis.call('SET', KEYS[2 * i + 1], aid .. '|' .. enrollUntil)
      end
    end
  end
end
if emitted > 0 and coolUntil > 0 then
  redis.call('SET', KEYS[1], eid .. '|' .. coolUntil, 'PX', math.max(coolUntil - now, 0) + dedupTTL)
end
return res
`)

var confirmScript = redis.NewScript(`
local prefix, ttl = 'p|' .. ARGV[1] .. '|', tonumber(ARGV[2])
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if (not v) or string.sub(v, 1, #prefix) == prefix then
    redis.call('SET', k, 'd', 'PX', ttl)
  end
end
return #KEYS
`)

// claim runs the claims in one pipeline. token identifies this attempt: a
// command retried by the client recognises its own claim.
func (s *RedisStore) claim(ctx context.Context, claims []*Claim, token string, now time.Time) error {
	if len(claims) == 0 {
		return nil
	}
	return s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(claims))
		for i, c := range claims {
			keys := make([]string, 0, 1+2*len(c.Targets))
			cool := int64(0)
			if c.CooldownKey != "" {
				keys = append(keys, c.CooldownKey)
				cool = ms(c.CooldownUntil)
			} else {
				keys = append(keys, s.ws(c.Workspace)+"nocooldown")
			}
			args := []any{token, ms(now), s.ttl.Lease.Milliseconds(), c.EventID, cool, s.ttl.Dedup.Milliseconds()}
			for _, t := range c.Targets {
				ek := t.EnrollKey
				until, ttl := int64(-1), int64(0)
				if ek == "" {
					ek = s.ws(c.Workspace) + "noenroll"
				} else {
					until = 0
					if !t.EnrollUntil.IsZero() {
						until = ms(t.EnrollUntil)
						ttl = max(until-ms(now), 0) + s.ttl.Dedup.Milliseconds()
					}
				}
				keys = append(keys, t.ActionKey, ek)
				args = append(args, t.ActionID, until, ttl)
			}
			cmds[i] = claimScript.EvalSha(ctx, pipe, keys, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, c := range claims {
			res, err := cmds[i].StringSlice()
			if err != nil {
				return err
			}
			c.busy, c.Cooldown = false, false
			if len(res) == 1 && (res[0] == "busy" || res[0] == "cooldown") {
				c.busy = res[0] == "busy"
				c.Cooldown = res[0] == "cooldown"
				continue
			}
			if len(res) != len(c.Targets) {
				return fmt.Errorf("claim script returned %d results for %d actions", len(res), len(c.Targets))
			}
			for j, r := range res {
				switch r {
				case "new":
					c.Targets[j].Status = ClaimNew
				case "ours":
					c.Targets[j].Status = ClaimOurs
				case "done":
					c.Targets[j].Status = ClaimDone
				case "enrolled":
					c.Targets[j].Status = ClaimEnrolled
				default:
					return fmt.Errorf("claim script returned %q", r)
				}
			}
		}
		return nil
	})
}

// confirm marks produced actions done, so that a redelivery is a duplicate.
func (s *RedisStore) confirm(ctx context.Context, actionKeys []string, token string) error {
	if len(actionKeys) == 0 {
		return nil
	}
	return s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		// One script call per workspace slot keeps keys of a call in one slot.
		bySlot := map[string][]string{}
		for _, k := range actionKeys {
			slot := k[:strings.Index(k, "}")+1]
			bySlot[slot] = append(bySlot[slot], k)
		}
		for _, keys := range bySlot {
			confirmScript.EvalSha(ctx, pipe, keys, token, s.ttl.Dedup.Milliseconds())
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}

// withScripts runs fn, loading the scripts and running it again if Redis
// lost them (a restart, a failover).
func (s *RedisStore) withScripts(ctx context.Context, fn func() error) error {
	err := fn()
	if err == nil || !isNoScript(err) {
		return err
	}
	for _, sc := range []*redis.Script{claimScript, confirmScript, armScript, dueScript, ackScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return fn()
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// Snapshots.

// snapshotRef names a record whose state is loaded.
type snapshotRef struct {
	Workspace, Object, ID string
}

func (s *RedisStore) loadSnapshots(ctx context.Context, refs []snapshotRef) ([][]byte, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(refs))
	for i, r := range refs {
		keys[i] = s.recordKey(r.Workspace, r.Object, r.ID)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([][]byte, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// stateWrites are the snapshot and timer changes of a batch, applied in
// one pipeline.
type stateWrites struct {
	saves   []snapshotWrite
	deletes []snapshotRef
	arms    []timerArm
	cancels []timerRef
}

type snapshotWrite struct {
	ref  snapshotRef
	data []byte
	// keepUntil is the latest due time of the record's armed timers.
	keepUntil time.Time
}

// timerRef names a record's timer for one date field: one timer serves
// every date automation on that field, due at the earliest of their due
// times not yet fired.
type timerRef struct {
	Workspace, Object, Field, RecordID string
}

// timerArm sets a timer for a date value: its automations fire for dues
// after Fired; Next is the first of them (zero: none left, no queue entry).
type timerArm struct {
	timerRef
	Date, Fired, Next time.Time
	// keep is how long the timer's value lives.
	keep time.Duration
}

func (w *stateWrites) empty() bool {
	return len(w.saves)+len(w.deletes)+len(w.arms)+len(w.cancels) == 0
}

// The arm script sets a timer unless it is already armed for the same
// date (a record's later events with an unchanged date leave it, fired or
// not). ARGV: date ms, fired ms, next ms (-1: none), value TTL ms.
var armScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.find(cur, '|', 1, true) - 1) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[4])
if tonumber(ARGV[3]) >= 0 then
  redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
else
  redis.call('ZREM', KEYS[2], KEYS[1])
end
return 1
`)

func (s *RedisStore) apply(ctx context.Context, w *stateWrites, now time.Time) error {
	if w.empty() {
		return nil
	}
	return s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		for _, sv := range w.saves {
			// A record with an armed timer is kept until the timer is due and
			// the usual snapshot TTL after, so that the timer finds it.
			ttl := s.ttl.Snapshot
			if sv.keepUntil.After(now) {
				ttl = max(ttl, sv.keepUntil.Sub(now)+s.ttl.Snapshot)
			}
			pipe.Set(ctx, s.recordKey(sv.ref.Workspace, sv.ref.Object, sv.ref.ID), sv.data, ttl)
		}
		for _, d := range w.deletes {
			pipe.Del(ctx, s.recordKey(d.Workspace, d.Object, d.ID))
		}
		for _, a := range w.arms {
			next := int64(-1)
			if !a.Next.IsZero() {
				next = ms(a.Next)
			}
			ttl := max(a.keep, 0) + s.ttl.Snapshot
			armScript.EvalSha(ctx, pipe, []string{s.timerKey(a.timerRef), s.timerQueue()}, ms(a.Date), ms(a.Fired), next, ttl.Milliseconds())
		}
		for _, c := range w.cancels {
			k := s.timerKey(c)
			pipe.Del(ctx, k)
			pipe.ZRem(ctx, s.timerQueue(), k)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}

// dueTimer is a timer claimed for firing.
type dueTimer struct {
	timerRef
	// Date is the date value it was armed for; Fired the time up to which
	// its automations have fired; Score its queue score (its next due).
	Date, Fired, Score time.Time
	key                string
	// leased is the queue score while claimed; the ack touches the entry
	// only if it still has it (it was not re-armed meanwhile).
	leased int64
	// After firing: the new fired mark, and the next due (zero: none).
	newFired, next time.Time
}

// The due script leases up to ARGV[2] entries due by ARGV[1] by moving
// them to the score ARGV[3] (now + lease): a crash before the ack lets
// them fire again after the lease. It returns member, value, score.
var dueScript = redis.NewScript(`
local upTo, limit, leased = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', upTo, 'WITHSCORES', 'LIMIT', 0, limit)
local out = {}
for i = 1, #due, 2 do
  local m = due[i]
  local v = redis.call('GET', m)
  if v then
    redis.call('ZADD', KEYS[1], leased, m)
    table.insert(out, m)
    table.insert(out, v)
    table.insert(out, due[i + 1])
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
`)

// The ack script settles fired timers still holding their lease: the
// fired mark is saved and the entry moves to its next due, or leaves the
// queue. ARGV: groups of member, leased score, next (-1: none), date, fired.
var ackScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 5 do
  local m = ARGV[i]
  if tonumber(redis.call('ZSCORE', KEYS[1], m)) == tonumber(ARGV[i + 1]) then
    if redis.call('EXISTS', m) == 1 then
      redis.call('SET', m, ARGV[i + 3] .. '|' .. ARGV[i + 4], 'KEEPTTL')
    end
    if tonumber(ARGV[i + 2]) >= 0 then
      redis.call('ZADD', KEYS[1], ARGV[i + 2], m)
    else
      redis.call('ZREM', KEYS[1], m)
    end
    n = n + 1
  end
end
return n
`)

// claimDue leases the timers due at or before upTo, earliest first.
func (s *RedisStore) claimDue(ctx context.Context, upTo, now time.Time, limit int) ([]dueTimer, error) {
	var out []dueTimer
	leased := ms(now) + s.ttl.Lease.Milliseconds()
	err := s.withScripts(ctx, func() error {
		res, err := dueScript.EvalSha(ctx, s.rdb, []string{s.timerQueue()}, ms(upTo), limit, leased).StringSlice()
		if err != nil {
			return err
		}
		out = s.parseDue(res, out[:0])
		for i := range out {
			out[i].leased = leased
		}
		return nil
	})
	return out, err
}

// parseDue reads member, value, score triples.
func (s *RedisStore) parseDue(res []string, out []dueTimer) []dueTimer {
	for i := 0; i+2 < len(res); i += 3 {
		ref, ok := s.parseTimerKey(res[i])
		date, fired, vok := parseTimerValue(res[i+1])
		score, err := strconv.ParseFloat(res[i+2], 64)
		if !ok || !vok || err != nil {
			continue
		}
		out = append(out, dueTimer{timerRef: ref, key: res[i], Date: time.UnixMilli(date).UTC(),
			Fired: time.UnixMilli(fired).UTC(), Score: time.UnixMilli(int64(score)).UTC()})
	}
	return out
}

func (s *RedisStore) ackTimers(ctx context.Context, ts []dueTimer) error {
	if len(ts) == 0 {
		return nil
	}
	args := make([]any, 0, 5*len(ts))
	for _, t := range ts {
		next := int64(-1)
		if !t.next.IsZero() {
			next = ms(t.next)
		}
		args = append(args, t.key, t.leased, next, ms(t.Date), ms(t.newFired))
	}
	return s.withScripts(ctx, func() error {
		return ackScript.EvalSha(ctx, s.rdb, []string{s.timerQueue()}, args...).Err()
	})
}
