package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
// Keys (keys.go) have hash tags so that the keys one script touches share
// a slot. On a single Redis they are namespaced by workspace,
// PREFIX{WORKSPACE}:KIND:..., and the due-timer queue is one sorted set,
// PREFIX timers, whose members name their workspace. On a Redis Cluster
// (a *redis.ClusterClient, or Options.ClusterLayout) the records, their
// timers and the timer queue are spread over record shards, so that no
// workspace is held in one slot (keys.go). A batch is one pipeline per
// step; go-redis splits a pipeline by node on a cluster and follows MOVED
// and ASK redirections.
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
	_, cluster := rdb.(*redis.ClusterClient)
	return &Redis{rdb: rdb, keys: keys{prefix: prefix, cluster: cluster || o.ClusterLayout}, ttl: o.TTLs, codec: newSnapshotCodec(o)}, nil
}

// TTLs returns the store's settings.
func (s *Redis) TTLs() TTLs { return s.ttl }

// Cluster tells whether the store keeps its keys in the cluster layout.
func (s *Redis) Cluster() bool { return s.keys.cluster }

// Ping checks that Redis answers.
func (s *Redis) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// The claim script decides the claims of one workspace (the keys one call
// touches share its slot), each as if alone, in order. KEYS, per claim:
// its cooldown key, then each action's key and enrollment key. ARGV: token,
// now, lease, dedup TTL, then per claim: event id, cooldown until (0:
// none), number of actions, then per action: action id, enroll until (-1:
// no enrollment, 0: forever), enrollment TTL. It returns, per claim, the
// actions' statuses, or {'busy'} or {'cooldown'} (nothing written).
var claimScript = redis.NewScript(`
local token, now, lease, dedupTTL = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function split(v)
  local sep = string.find(v, '|[^|]*$')
  return string.sub(v, 1, sep - 1), tonumber(string.sub(v, sep + 1))
end
local function claim(k, a, n)
  local eid, coolUntil = ARGV[a], tonumber(ARGV[a + 1])
  if coolUntil > 0 then
    local v = redis.call('GET', KEYS[k])
    if v then
      local ev, untilMs = split(v)
      if ev ~= eid and untilMs > now then return {'cooldown'} end
    end
  end
  local res = {}
  for i = 1, n do
    local v = redis.call('GET', KEYS[k + 2 * i - 1])
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
      local base = a + 3 + 3 * (i - 1)
      local aid, enrollUntil = ARGV[base], tonumber(ARGV[base + 1])
      if enrollUntil >= 0 then
        local ev = redis.call('GET', KEYS[k + 2 * i])
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
      local base = a + 3 + 3 * (i - 1)
      local aid, enrollUntil, enrollTTL = ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
      redis.call('SET', KEYS[k + 2 * i - 1], 'p|' .. token .. '|' .. (now + lease), 'PX', dedupTTL)
      if enrollUntil >= 0 then
        if enrollTTL > 0 then
          redis.call('SET', KEYS[k + 2 * i], aid .. '|' .. enrollUntil, 'PX', enrollTTL)
        else
          redis.call('SET', KEYS[k + 2 * i], aid .. '|' .. enrollUntil)
        end
      end
    end
  end
  if emitted > 0 and coolUntil > 0 then
    redis.call('SET', KEYS[k], eid .. '|' .. coolUntil, 'PX', math.max(coolUntil - now, 0) + dedupTTL)
  end
  return res
end
local out = {}
local k, a = 1, 5
while a <= #ARGV do
  local n = tonumber(ARGV[a + 2])
  table.insert(out, claim(k, a, n))
  k = k + 1 + 2 * n
  a = a + 3 + 3 * n
end
return out
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
	// One script call per workspace: its keys share a slot.
	type call struct {
		claims []*Claim
		keys   []string
		args   []any
		cmd    *redis.Cmd
	}
	var calls []*call
	byWS := map[string]*call{}
	for _, c := range claims {
		cl := byWS[c.Workspace]
		if cl == nil {
			cl = &call{args: []any{token, ms(now), s.ttl.Lease.Milliseconds(), s.ttl.Dedup.Milliseconds()}}
			byWS[c.Workspace] = cl
			calls = append(calls, cl)
		}
		cl.claims = append(cl.claims, c)
		cool := int64(0)
		if !c.CooldownUntil.IsZero() {
			cl.keys = append(cl.keys, s.keys.cooldown(c.Workspace, c.AutomationID, c.RecordID))
			cool = ms(c.CooldownUntil)
		} else {
			cl.keys = append(cl.keys, s.keys.noCooldown(c.Workspace))
		}
		cl.args = append(cl.args, c.EventID, cool, len(c.Targets))
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
			cl.keys = append(cl.keys, s.keys.action(c.Workspace, t.ActionID), ek)
			cl.args = append(cl.args, t.ActionID, until, ttl)
		}
	}
	return s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		for _, cl := range calls {
			cl.cmd = claimScript.EvalSha(ctx, pipe, cl.keys, cl.args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for _, cl := range calls {
			v, err := cl.cmd.Result()
			if err != nil {
				return err
			}
			outs, ok := v.([]any)
			if !ok || len(outs) != len(cl.claims) {
				return fmt.Errorf("claim script returned %T for %d claims", v, len(cl.claims))
			}
			for i, c := range cl.claims {
				if err := settleClaim(c, outs[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// settleClaim sets c's results from the claim script's answer for it.
func settleClaim(c *Claim, v any) error {
	raw, ok := v.([]any)
	if !ok {
		return fmt.Errorf("claim script returned %T for a claim", v)
	}
	res := make([]string, len(raw))
	for i, r := range raw {
		if res[i], ok = r.(string); !ok {
			return fmt.Errorf("claim script returned %T for an action", r)
		}
	}
	c.Busy, c.Cooldown = false, false
	if len(res) == 1 && (res[0] == "busy" || res[0] == "cooldown") {
		c.Busy = res[0] == "busy"
		c.Cooldown = res[0] == "cooldown"
		return nil
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
	return nil
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
	if err := s.loadScripts(ctx); err != nil {
		return err
	}
	return fn()
}

// loadScripts loads the scripts (on every master of a cluster).
func (s *Redis) loadScripts(ctx context.Context) error {
	for _, sc := range []*redis.Script{claimScript, confirmScript, armScript, dueScript, dueMembersScript, ackScript, startWalkScript, advanceWalkScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
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

// DecodeSnapshot reads the stored form of ref's snapshot (Save.Data), as
// LoadSnapshots does; nil when the schema cannot read it (logged).
func (s *Redis) DecodeSnapshot(ref RecordRef, data []byte) *Snapshot {
	return s.codec.decode(ref, data)
}

// The arm script arms timers of one queue, each unless it is
// already armed for the same date (a record's later events with an
// unchanged date leave it, fired or not), or, forced, unless it is armed
// for the same signature. KEYS: the timer keys, then the queue. ARGV, per
// timer: date ms, fired ms, next ms (-1: none), value TTL ms, seen ms,
// force (1), signature.
var armScript = redis.NewScript(`
local q = KEYS[#KEYS]
for t = 1, #KEYS - 1 do
  local a = 7 * (t - 1)
  local key = KEYS[t]
  local cur = redis.call('GET', key)
  local skip = false
  if cur then
    if ARGV[a + 6] ~= '1' and string.sub(cur, 1, string.find(cur, '|', 1, true) - 1) == ARGV[a + 1] then skip = true end
    if ARGV[a + 6] == '1' and ARGV[a + 7] ~= '' and string.match(cur, '^[^|]*|[^|]*|[^|]*|(.*)$') == ARGV[a + 7] then skip = true end
  end
  if not skip then
    redis.call('SET', key, ARGV[a + 1] .. '|' .. ARGV[a + 2] .. '|' .. ARGV[a + 5] .. '|' .. ARGV[a + 7], 'PX', ARGV[a + 4])
    if tonumber(ARGV[a + 3]) >= 0 then
      redis.call('ZADD', q, ARGV[a + 3], key)
    else
      redis.call('ZREM', q, key)
    end
  end
end
return #KEYS - 1
`)

// maxArmsPerCall bounds the timers of one arm script call: a few hundred
// microseconds of Redis time.
const maxArmsPerCall = 200

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
			pipe.SRem(ctx, s.keys.known(d.Workspace, d.Object, d.ID), d.ID)
		}
		for _, f := range w.Forget {
			pipe.SRem(ctx, s.keys.known(f.Workspace, f.Object, f.ID), f.ID)
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
			data := (*buf)[start:len(*buf):len(*buf)]
			pipe.Set(ctx, s.keys.record(sv.Ref), data, ttl)
			if w.Encoded {
				sv.Data = append([]byte(nil), data...)
			}
			pipe.SAdd(ctx, s.keys.known(sv.Ref.Workspace, sv.Ref.Object, sv.Ref.ID), sv.Ref.ID)
		}
		for _, c := range w.Cancels {
			k := s.keys.timer(c)
			pipe.Del(ctx, k)
			pipe.ZRem(ctx, s.keys.queueOf(c), k)
		}
		for _, a := range w.Advances {
			done := "0"
			if a.Done {
				done = "1"
			}
			advanceWalkScript.EvalSha(ctx, pipe, []string{s.keys.walk(a.Ref)}, a.Target, a.Token, a.Cursor, done)
		}
		// One arm script call for the batch's timers (cluster layout: per
		// timer shard, whose keys share its slot), in order, of at most
		// maxArmsPerCall timers so that no call holds Redis long.
		type armCall struct {
			keys  []string
			args  []any
			queue string
		}
		var order []*armCall
		arms := map[string]*armCall{} // the open call of each queue
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
			q := s.keys.queueOf(a.TimerRef)
			c := arms[q]
			if c == nil || len(c.keys) == maxArmsPerCall {
				c = &armCall{queue: q}
				arms[q] = c
				order = append(order, c)
			}
			c.keys = append(c.keys, s.keys.timer(a.TimerRef))
			c.args = append(c.args, ms(a.Date), ms(a.Fired), next, ttl.Milliseconds(), msOrZero(a.Seen), force, a.Sig)
		}
		for _, c := range order {
			armScript.EvalSha(ctx, pipe, append(c.keys, c.queue), c.args...)
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

// The due-members script leases the given members of a timer queue that
// are still due by ARGV[1], moving them to the score ARGV[2] (now +
// lease), as the due script does. ARGV: up to, leased, members... It
// returns member, value, score.
var dueMembersScript = redis.NewScript(`
local upTo, leased = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local m = ARGV[i]
  local sc = redis.call('ZSCORE', KEYS[1], m)
  if sc and tonumber(sc) <= upTo then
    local v = redis.call('GET', m)
    if v then
      redis.call('ZADD', KEYS[1], leased, m)
      table.insert(out, m)
      table.insert(out, v)
      table.insert(out, sc)
    else
      redis.call('ZREM', KEYS[1], m)
    end
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
// first, until now + TTLs.Lease. In the cluster layout it looks at the
// head of every timer shard's queue first (one pipeline), then leases
// the earliest limit of them, each shard's with one script call.
func (s *Redis) ClaimDue(ctx context.Context, upTo, now time.Time, limit int) ([]DueTimer, error) {
	leased := ms(now) + s.ttl.Lease.Milliseconds()
	if !s.keys.cluster {
		var out []DueTimer
		err := s.withScripts(ctx, func() error {
			q := s.keys.timerQueue(0)
			res, err := dueScript.EvalSha(ctx, s.rdb, []string{q}, ms(upTo), limit, leased).StringSlice()
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
	if limit <= 0 {
		return nil, nil
	}
	heads, err := s.dueHeads(ctx, upTo, int64(limit))
	if err != nil || len(heads) == 0 {
		return nil, err
	}
	// The earliest limit entries over every shard, each shard's leased by
	// one script call.
	s.sortHeads(heads)
	heads = heads[:min(len(heads), limit)]
	rank := make(map[string]int, len(heads))
	take := make([][]any, Shards)
	for i, h := range heads {
		rank[h.member] = i
		if take[h.shard] == nil {
			take[h.shard] = []any{ms(upTo), leased}
		}
		take[h.shard] = append(take[h.shard], h.member)
	}
	// A shard whose script failed (NOSCRIPT after a failover: Redis lost
	// its scripts) is run again once the scripts are loaded; those that
	// ran are not, so that what they leased is returned.
	var out []DueTimer
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, Shards)
		for sh, args := range take {
			if args != nil {
				cmds[sh] = dueMembersScript.EvalSha(ctx, pipe, []string{s.keys.timerQueue(sh)}, args...)
			}
		}
		_, _ = pipe.Exec(ctx) // each command's error is read below
		var failed error
		for sh, c := range cmds {
			if c == nil {
				continue
			}
			res, err := c.StringSlice()
			if err != nil {
				if attempt == 0 && isNoScript(err) {
					failed = err
					continue
				}
				return out, err
			}
			take[sh] = nil
			n := len(out)
			out = s.parseDue(res, out)
			for i := n; i < len(out); i++ {
				out[i].leased = leased
			}
		}
		if failed == nil {
			break
		}
		if err := s.loadScripts(ctx); err != nil {
			return out, err
		}
	}
	// In the order of the heads (the scores the script saw are theirs,
	// but for an entry re-armed in between).
	slices.SortStableFunc(out, func(a, b DueTimer) int { return cmp.Compare(rank[a.member], rank[b.member]) })
	return out, nil
}

// sortHeads sorts queue entries by score, ties in the order of their
// single-Redis keys (one queue sorts them so there).
func (s *Redis) sortHeads(heads []dueHead) {
	if !s.keys.cluster {
		return // one queue, and its members are the single-Redis keys
	}
	tie := make(map[string]string, len(heads))
	for _, h := range heads {
		ref, _ := s.keys.parseTimer(h.member)
		tie[h.member] = s.keys.tieKey(ref)
	}
	slices.SortStableFunc(heads, func(a, b dueHead) int {
		if a.score != b.score {
			return cmp.Compare(a.score, b.score)
		}
		return strings.Compare(tie[a.member], tie[b.member])
	})
}

// dueHead is an entry at the head of a timer shard's queue.
type dueHead struct {
	shard  int
	member string
	score  float64
}

// dueHeads lists up to limit entries of every timer queue due at or
// before upTo, in one pipeline.
func (s *Redis) dueHeads(ctx context.Context, upTo time.Time, limit int64) ([]dueHead, error) {
	pipe := s.rdb.Pipeline()
	n := s.keys.shards()
	cmds := make([]*redis.ZSliceCmd, n)
	by := &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(ms(upTo), 10), Count: limit}
	for sh := range n {
		cmds[sh] = pipe.ZRangeByScoreWithScores(ctx, s.keys.timerQueue(sh), by)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var out []dueHead
	for sh, c := range cmds {
		for _, z := range c.Val() {
			m, _ := z.Member.(string)
			out = append(out, dueHead{shard: sh, member: m, score: z.Score})
		}
	}
	return out, nil
}

// PeekDue lists the timers due at or before upTo, earliest first, as
// ClaimDue would lease them, without leasing them.
func (s *Redis) PeekDue(ctx context.Context, upTo time.Time) ([]DueTimer, error) {
	heads, err := s.dueHeads(ctx, upTo, 0)
	if err != nil || len(heads) == 0 {
		return nil, err
	}
	s.sortHeads(heads)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(heads))
	for i, h := range heads {
		cmds[i] = pipe.Get(ctx, h.member)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	res := make([]string, 0, 3*len(heads))
	for i, h := range heads {
		v, err := cmds[i].Result()
		if err != nil {
			continue // disarmed
		}
		res = append(res, h.member, v, strconv.FormatInt(int64(h.score), 10))
	}
	return s.parseDue(res, nil), nil
}

// parseDue reads member, value, score triples of due-timer queues.
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
// re-armed or cancelled since it was claimed is left as it is. One script
// call per queue (a timer shard in the cluster layout), in one pipeline.
func (s *Redis) AckTimers(ctx context.Context, due []DueTimer) error {
	if len(due) == 0 {
		return nil
	}
	var order []string
	args := map[string][]any{}
	for _, t := range due {
		next := int64(-1)
		if !t.Next.IsZero() {
			next = ms(t.Next)
		}
		q := s.keys.queueOf(t.TimerRef)
		if _, ok := args[q]; !ok {
			order = append(order, q)
		}
		args[q] = append(args[q], t.member, t.leased, next, ms(t.Date), ms(t.NewFired), msOrZero(t.Seen), t.Sig)
	}
	return s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		for _, q := range order {
			ackScript.EvalSha(ctx, pipe, []string{q}, args[q]...)
		}
		_, err := pipe.Exec(ctx)
		return err
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
