package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps the engine's state in Redis, the production store. Every
// decision that must be atomic across engine instances is one Lua script,
// and every script takes the engine's `now` as an argument, so that
// windows follow the injected clock (simulated time in `whenthen eval`)
// rather than the Redis server's. Redis TTLs only collect garbage.
//
// Keys (keys.go) are namespaced by workspace with a hash tag, so that the
// keys one script touches share a slot: PREFIX{WORKSPACE}:KIND:... The
// due-timer queue is one sorted set, PREFIX timers, whose members name
// their workspace. A batch is one pipeline per step.
type Redis struct {
	rdb   redis.UniversalClient
	keys  keys
	ttl   TTLs
	codec snapshotCodec
}

// NewRedis keeps state in rdb under prefix (default "wt:").
func NewRedis(rdb redis.UniversalClient, prefix string, opts Options) (*Redis, error) {
	if rdb == nil {
		return nil, errors.New("store: a Redis client is required")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if prefix == "" {
		prefix = "wt:"
	}
	return &Redis{rdb: rdb, keys: keys{prefix}, ttl: o.TTLs, codec: newSnapshotCodec(o)}, nil
}

// TTLs returns the store's settings.
func (s *Redis) TTLs() TTLs { return s.ttl }

// Ping checks that Redis answers.
func (s *Redis) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

var claimScript = redis.NewScript(`
local token, now, lease, eid = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local coolUntil, dedupTTL = tonumber(ARGV[5]), tonumber(ARGV[6])
local n = (#KEYS - 1) / 2
local function split(v)
  local sep = string.find(v, '|[^|]*$')
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

// Claim runs the claims in one pipeline and sets their results. token
// identifies the claimant: a command retried by the client, or a batch
// retried with the same token, recognises its own claim (StatusOurs).
func (s *Redis) Claim(ctx context.Context, claims []*Claim, token string, now time.Time) error {
	if len(claims) == 0 {
		return nil
	}
	return s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(claims))
		for i, c := range claims {
			keys := make([]string, 0, 1+2*len(c.Targets))
			cool := int64(0)
			if !c.CooldownUntil.IsZero() {
				keys = append(keys, s.keys.cooldown(c.Workspace, c.AutomationID, c.RecordID))
				cool = ms(c.CooldownUntil)
			} else {
				keys = append(keys, s.keys.noCooldown(c.Workspace))
			}
			args := []any{token, ms(now), s.ttl.Lease.Milliseconds(), c.EventID, cool, s.ttl.Dedup.Milliseconds()}
			for _, t := range c.Targets {
				var ek string
				until, ttl := int64(-1), int64(0)
				if t.Flow == "" {
					ek = s.keys.noEnroll(c.Workspace)
				} else {
					ek = s.keys.enroll(c.Workspace, t.Flow, t.Person)
					until = 0
					if !t.EnrollUntil.IsZero() {
						until = ms(t.EnrollUntil)
						ttl = max(until-ms(now), 0) + s.ttl.Dedup.Milliseconds()
					}
				}
				keys = append(keys, s.keys.action(c.Workspace, t.ActionID), ek)
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
			c.Busy, c.Cooldown = false, false
			if len(res) == 1 && (res[0] == "busy" || res[0] == "cooldown") {
				c.Busy = res[0] == "busy"
				c.Cooldown = res[0] == "cooldown"
				continue
			}
			if len(res) != len(c.Targets) {
				return fmt.Errorf("claim script returned %d results for %d actions", len(res), len(c.Targets))
			}
			for j, r := range res {
				switch r {
				case "new":
					c.Targets[j].Status = StatusNew
				case "ours":
					c.Targets[j].Status = StatusOurs
				case "done":
					c.Targets[j].Status = StatusDone
				case "enrolled":
					c.Targets[j].Status = StatusEnrolled
				default:
					return fmt.Errorf("claim script returned %q", r)
				}
			}
		}
		return nil
	})
}

// Confirm marks produced actions done, so that a redelivery is a
// duplicate: those claimed with token, and those whose claim is gone.
func (s *Redis) Confirm(ctx context.Context, actions []ActionRef, token string) error {
	if len(actions) == 0 {
		return nil
	}
	return s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		// One script call per workspace keeps the keys of a call in one slot.
		byWS := map[string][]string{}
		for _, a := range actions {
			byWS[a.Workspace] = append(byWS[a.Workspace], s.keys.action(a.Workspace, a.ActionID))
		}
		for _, keys := range byWS {
			confirmScript.EvalSha(ctx, pipe, keys, token, s.ttl.Dedup.Milliseconds())
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}

// withScripts runs fn, loading the scripts and running it again if Redis
// lost them (a restart, a failover).
func (s *Redis) withScripts(ctx context.Context, fn func() error) error {
	err := fn()
	if err == nil || !isNoScript(err) {
		return err
	}
	for _, sc := range []*redis.Script{claimScript, confirmScript, armScript, dueScript, ackScript, startWalkScript, advanceWalkScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return fn()
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// LoadSnapshots reads the snapshots of refs in one pipeline: nil where a
// record has none, or one the schema cannot read (logged).
func (s *Redis) LoadSnapshots(ctx context.Context, refs []RecordRef) ([]*Snapshot, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(refs))
	for i, r := range refs {
		cmds[i] = pipe.Get(ctx, s.keys.record(r))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]*Snapshot, len(refs))
	for i, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = s.codec.decode(refs[i], b)
	}
	return out, nil
}

// The arm script sets a timer unless it is already armed for the same
// date. ARGV: date ms, fired ms, next ms (-1: none), value TTL ms.
var armScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  if ARGV[6] ~= '1' and string.sub(cur, 1, string.find(cur, '|', 1, true) - 1) == ARGV[1] then return 0 end
  if ARGV[6] == '1' and ARGV[7] ~= '' and string.match(cur, '^[^|]*|[^|]*|[^|]*|(.*)$') == ARGV[7] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[5] .. '|' .. ARGV[7], 'PX', ARGV[4])
if tonumber(ARGV[3]) >= 0 then
  redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
else
  redis.call('ZREM', KEYS[2], KEYS[1])
end
return 1
`)

// Apply writes a batch's snapshots and timers in one pipeline. The
// snapshots are encoded one after the other into one buffer, kept for
// the next batch.
func (s *Redis) Apply(ctx context.Context, w *Writes, now time.Time) error {
	if w.Empty() {
		return nil
	}
	var buf *[]byte
	if len(w.Saves) > 0 {
		buf = getSnapshotBuf()
		// The pipeline holds slices of the buffer until Exec returns.
		defer putSnapshotBuf(buf)
	}
	return s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		if buf != nil {
			*buf = (*buf)[:0]
		}
		// Deletes before saves and cancels before arms (Writes).
		for _, d := range w.Deletes {
			pipe.Del(ctx, s.keys.record(d))
			pipe.SRem(ctx, s.keys.known(d.Workspace, d.Object), d.ID)
		}
		for _, f := range w.Forget {
			pipe.SRem(ctx, s.keys.known(f.Workspace, f.Object), f.ID)
		}
		for i := range w.Saves {
			sv := &w.Saves[i]
			start := len(*buf)
			var ok bool
			if *buf, ok = s.codec.encode(*buf, sv); !ok {
				continue
			}
			// A record with an armed timer is kept until the timer is due and
			// the usual snapshot TTL after, so that the timer finds it.
			ttl := s.ttl.Snapshot
			if sv.KeepUntil.After(now) {
				ttl = max(ttl, sv.KeepUntil.Sub(now)+s.ttl.Snapshot)
			}
			pipe.Set(ctx, s.keys.record(sv.Ref), (*buf)[start:len(*buf):len(*buf)], ttl)
			pipe.SAdd(ctx, s.keys.known(sv.Ref.Workspace, sv.Ref.Object), sv.Ref.ID)
		}
		for _, c := range w.Cancels {
			k := s.keys.timer(c)
			pipe.Del(ctx, k)
			pipe.ZRem(ctx, s.keys.timerQueue(), k)
		}
		for _, a := range w.Advances {
			done := "0"
			if a.Done {
				done = "1"
			}
			advanceWalkScript.EvalSha(ctx, pipe, []string{s.keys.walk(a.Ref)}, a.Target, a.Token, a.Cursor, done)
		}
		for _, a := range w.Arms {
			next := int64(-1)
			if !a.Next.IsZero() {
				next = ms(a.Next)
			}
			ttl := max(a.Keep, 0) + s.ttl.Snapshot
			force := "0"
			if a.Force {
				force = "1"
			}
			armScript.EvalSha(ctx, pipe, []string{s.keys.timer(a.TimerRef), s.keys.timerQueue()}, ms(a.Date), ms(a.Fired), next, ttl.Milliseconds(), msOrZero(a.Seen), force, a.Sig)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
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
for i = 1, #ARGV, 7 do
  local m = ARGV[i]
  if tonumber(redis.call('ZSCORE', KEYS[1], m)) == tonumber(ARGV[i + 1]) then
    if redis.call('EXISTS', m) == 1 then
      redis.call('SET', m, ARGV[i + 3] .. '|' .. ARGV[i + 4] .. '|' .. ARGV[i + 5] .. '|' .. ARGV[i + 6], 'KEEPTTL')
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

// ClaimDue leases up to limit timers due at or before upTo, earliest
// first, until now + TTLs.Lease.
func (s *Redis) ClaimDue(ctx context.Context, upTo, now time.Time, limit int) ([]DueTimer, error) {
	var out []DueTimer
	leased := ms(now) + s.ttl.Lease.Milliseconds()
	err := s.withScripts(ctx, func() error {
		res, err := dueScript.EvalSha(ctx, s.rdb, []string{s.keys.timerQueue()}, ms(upTo), limit, leased).StringSlice()
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

// PeekDue lists the timers due at or before upTo, earliest first, as
// ClaimDue would lease them, without leasing them.
func (s *Redis) PeekDue(ctx context.Context, upTo time.Time) ([]DueTimer, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.keys.timerQueue(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(ms(upTo), 10)}).Result()
	if err != nil || len(zs) == 0 {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(zs))
	for i, z := range zs {
		cmds[i] = pipe.Get(ctx, z.Member.(string))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	res := make([]string, 0, 3*len(zs))
	for i, z := range zs {
		v, err := cmds[i].Result()
		if err != nil {
			continue // disarmed
		}
		res = append(res, z.Member.(string), v, strconv.FormatInt(int64(z.Score), 10))
	}
	return s.parseDue(res, nil), nil
}

// parseDue reads member, value, score triples.
func (s *Redis) parseDue(res []string, out []DueTimer) []DueTimer {
	for i := 0; i+2 < len(res); i += 3 {
		ref, ok := s.keys.parseTimer(res[i])
		date, fired, seen, sig, vok := parseTimerValue(res[i+1])
		score, err := strconv.ParseFloat(res[i+2], 64)
		if !ok || !vok || err != nil {
			continue
		}
		out = append(out, DueTimer{TimerRef: ref, member: res[i], Date: fromMS(date),
			Fired: fromMS(fired), Seen: fromMSOrZero(seen), Sig: sig, Score: fromMS(int64(score))})
	}
	return out
}

// AckTimers settles fired timers still holding their lease: each moves to
// its next due with its new fired mark, or leaves the queue. A timer
// re-armed or cancelled since it was claimed is left as it is.
func (s *Redis) AckTimers(ctx context.Context, due []DueTimer) error {
	if len(due) == 0 {
		return nil
	}
	args := make([]any, 0, 7*len(due))
	for _, t := range due {
		next := int64(-1)
		if !t.Next.IsZero() {
			next = ms(t.Next)
		}
		args = append(args, t.member, t.leased, next, ms(t.Date), ms(t.NewFired), msOrZero(t.Seen), t.Sig)
	}
	return s.withScripts(ctx, func() error {
		return ackScript.EvalSha(ctx, s.rdb, []string{s.keys.timerQueue()}, args...).Err()
	})
}

// Export reads the settled state of sel: snapshots in their stored form,
// cooldowns, done marks and enrollments. Pending claims are left out.
func (s *Redis) Export(ctx context.Context, sel Selection) (*State, error) {
	st := &State{}
	n := len(sel.Records) + len(sel.Cooldowns) + len(sel.Actions) + len(sel.Enrollments)
	if n == 0 {
		return st, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, 0, n)
	for _, r := range sel.Records {
		cmds = append(cmds, pipe.Get(ctx, s.keys.record(r)))
	}
	for _, c := range sel.Cooldowns {
		cmds = append(cmds, pipe.Get(ctx, s.keys.cooldown(c.Workspace, c.AutomationID, c.RecordID)))
	}
	for _, a := range sel.Actions {
		cmds = append(cmds, pipe.Get(ctx, s.keys.action(a.Workspace, a.ActionID)))
	}
	for _, e := range sel.Enrollments {
		cmds = append(cmds, pipe.Get(ctx, s.keys.enroll(e.Workspace, e.Flow, e.Person)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	next := func() (string, bool, error) {
		c := cmds[0]
		cmds = cmds[1:]
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			return "", false, nil
		}
		return v, err == nil, err
	}
	for _, r := range sel.Records {
		v, ok, err := next()
		if err != nil {
			return nil, err
		}
		if ok {
			st.Snapshots = append(st.Snapshots, StoredSnapshot{Ref: r, Data: []byte(v)})
		}
	}
	for _, c := range sel.Cooldowns {
		v, ok, err := next()
		if err != nil {
			return nil, err
		}
		if ev, until, vok := splitValue(v); ok && vok {
			st.Cooldowns = append(st.Cooldowns, Cooldown{CooldownRef: c, EventID: ev, Until: fromMS(until)})
		}
	}
	for _, a := range sel.Actions {
		v, ok, err := next()
		if err != nil {
			return nil, err
		}
		if ok && v == "d" {
			st.Done = append(st.Done, a)
		}
	}
	for _, e := range sel.Enrollments {
		v, ok, err := next()
		if err != nil {
			return nil, err
		}
		if aid, until, vok := splitValue(v); ok && vok {
			en := Enrollment{EnrollmentRef: e, ActionID: aid}
			if until != 0 {
				en.Until = fromMS(until)
			}
			st.Enrollments = append(st.Enrollments, en)
		}
	}
	return st, nil
}

// Import writes exported state, without time to live.
func (s *Redis) Import(ctx context.Context, st *State) error {
	if st == nil {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, sn := range st.Snapshots {
		pipe.Set(ctx, s.keys.record(sn.Ref), sn.Data, 0)
	}
	for _, c := range st.Cooldowns {
		pipe.Set(ctx, s.keys.cooldown(c.Workspace, c.AutomationID, c.RecordID), c.EventID+"|"+strconv.FormatInt(ms(c.Until), 10), 0)
	}
	for _, a := range st.Done {
		pipe.Set(ctx, s.keys.action(a.Workspace, a.ActionID), "d", 0)
	}
	for _, e := range st.Enrollments {
		until := int64(0)
		if !e.Until.IsZero() {
			until = ms(e.Until)
		}
		pipe.Set(ctx, s.keys.enroll(e.Workspace, e.Flow, e.Person), e.ActionID+"|"+strconv.FormatInt(until, 10), 0)
	}
	if pipe.Len() == 0 {
		return nil
	}
	_, err := pipe.Exec(ctx)
	return err
}
