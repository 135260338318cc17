package delivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis keys of delivery. Every key of a destination carries the hash
// tag {d:DEST}, so that each script's keys share a slot (Redis Cluster);
// every key a script touches is passed in KEYS.
//
//	PREFIX{d:DEST}:q            sorted set: action ids by next attempt (ms); while claimed, by lease end
//	PREFIX{d:DEST}:age          sorted set: action ids by when they were scheduled (ms)
//	PREFIX{d:DEST}:j:ACTION_ID  hash: the job (below); expires MaxAge + 1 day after scheduling
//	PREFIX{d:DEST}:f:ACTION_ID  the final mark: STATUS|REASON|ATTEMPTS|HTTP_STATUS|DURATION_MS|AT_MS; expires after the dedup TTL
//
// A job's fields: a the action (the message value), k the message key, s
// its source (topic/partition/offset), e when it was scheduled, n the
// attempts made, f when the first was, l the attempt log (JSON), t the
// token of the claim holding it, c the content built by the first
// attempt (the webhook body, the brief), so that every attempt sends the
// same bytes.
type queue struct {
	rdb    redis.UniversalClient
	prefix string
}

func (q queue) tag(dest string) string { return q.prefix + "{d:" + dest + "}:" }
func (q queue) zset(dest string) string {
	return q.tag(dest) + "q"
}
func (q queue) ages(dest string) string         { return q.tag(dest) + "age" }
func (q queue) job(dest, id string) string      { return q.tag(dest) + "j:" + id }
func (q queue) finalKey(dest, id string) string { return q.tag(dest) + "f:" + id }
func ms(t time.Time) int64                      { return t.UnixMilli() }
func fromMS(v int64) time.Time                  { return time.UnixMilli(v).UTC() }
func itoa(v int64) string                       { return strconv.FormatInt(v, 10) }
func jobTTL(maxAge time.Duration) time.Duration { return maxAge + 24*time.Hour }

// enqueueScript schedules jobs unless they are final or already pending.
// KEYS: q, age, then per job its job and final keys. ARGV: now, job TTL
// (ms), then per job: id, action, message key, source. Returns per job n
// (scheduled), p (pending already) or f (final already).
var enqueueScript = redis.NewScript(`
local now, ttl = ARGV[1], ARGV[2]
local res = {}
local n = (#KEYS - 2) / 2
for i = 1, n do
  local jk, fk = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local b = 2 + 4 * (i - 1)
  local id = ARGV[b + 1]
  if redis.call('EXISTS', fk) == 1 then
    res[i] = 'f'
  elseif redis.call('EXISTS', jk) == 1 then
    res[i] = 'p'
  else
    redis.call('HSET', jk, 'a', ARGV[b + 2], 'k', ARGV[b + 3], 's', ARGV[b + 4], 'e', now, 'n', 0)
    redis.call('PEXPIRE', jk, ttl)
    redis.call('ZADD', KEYS[1], now, id)
    redis.call('ZADD', KEYS[2], now, id)
    res[i] = 'n'
  end
end
return res
`)

// claimScript claims the due jobs among ARGV's ids: each gets the token
// and, as its score, the lease end. KEYS: q, age, then per id its job and
// final keys. ARGV: now, lease end, token, ids... Returns 10 strings per
// claimed job: id, a, k, s, e, n, f, l, c, final mark ("" if none). A
// member whose job expired is removed.
var claimScript = redis.NewScript(`
local now, lease, token = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local jk, fk = KEYS[3 + 2 * (i - 4)], KEYS[4 + 2 * (i - 4)]
  local sc = redis.call('ZSCORE', KEYS[1], id)
  if sc and tonumber(sc) <= now then
    local f = redis.call('HMGET', jk, 'a', 'k', 's', 'e', 'n', 'f', 'l', 'c')
    if not f[1] then
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
    else
      redis.call('HSET', jk, 't', token)
      redis.call('ZADD', KEYS[1], lease, id)
      out[#out + 1] = id
      for j = 1, 8 do out[#out + 1] = f[j] or '' end
      out[#out + 1] = redis.call('GET', fk) or ''
    end
  end
end
return out
`)

// rescheduleScript puts claimed jobs back for a later attempt, if the
// claim is still theirs. KEYS: q, then per job its key. ARGV per job:
// token, id, next attempt, attempts, first attempt, log, content ("":
// unchanged). Returns how many were put back.
var rescheduleScript = redis.NewScript(`
local done = 0
for i = 2, #KEYS do
  local b = 7 * (i - 2)
  if redis.call('HGET', KEYS[i], 't') == ARGV[b + 1] then
    redis.call('HSET', KEYS[i], 'n', ARGV[b + 4], 'f', ARGV[b + 5], 'l', ARGV[b + 6])
    if ARGV[b + 7] ~= '' then redis.call('HSET', KEYS[i], 'c', ARGV[b + 7]) end
    redis.call('HDEL', KEYS[i], 't')
    redis.call('ZADD', KEYS[1], ARGV[b + 3], ARGV[b + 2])
    done = done + 1
  end
end
return done
`)

// finishScript removes finished jobs whose claim is still theirs (or that
// are gone). KEYS: q, age, then per job its key. ARGV per job: token, id.
var finishScript = redis.NewScript(`
local done = 0
for i = 3, #KEYS do
  local b = 2 * (i - 3)
  local t = redis.call('HGET', KEYS[i], 't')
  if t == ARGV[b + 1] or not t then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[b + 2])
    redis.call('ZREM', KEYS[2], ARGV[b + 2])
    done = done + 1
  end
end
return done
`)

var scripts = []*redis.Script{enqueueScript, claimScript, rescheduleScript, finishScript}

// withScripts runs fn, loading the scripts and running it again if Redis
// lost them (a restart, a failover).
func (q queue) withScripts(ctx context.Context, fn func() error) error {
	err := fn()
	if err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return err
	}
	for _, sc := range scripts {
		if err := sc.Load(ctx, q.rdb).Err(); err != nil {
			return err
		}
	}
	return fn()
}

// newJob is a job to schedule.
type newJob struct {
	id, action, key, source string
}

// Results of enqueue.
const (
	enqNew     = 'n'
	enqPending = 'p'
	enqFinal   = 'f'
)

// enqueue schedules jobs per destination, all in one pipeline, and
// returns for each destination each job's result.
func (q queue) enqueue(ctx context.Context, byDest map[string][]newJob, maxAge map[string]time.Duration, now time.Time) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := q.withScripts(ctx, func() error {
		pipe := q.rdb.Pipeline()
		cmds := map[string]*redis.Cmd{}
		for dest, jobs := range byDest {
			keys := make([]string, 0, 2+2*len(jobs))
			keys = append(keys, q.zset(dest), q.ages(dest))
			args := make([]any, 0, 2+4*len(jobs))
			args = append(args, ms(now), jobTTL(maxAge[dest]).Milliseconds())
			for _, j := range jobs {
				keys = append(keys, q.job(dest, j.id), q.finalKey(dest, j.id))
				args = append(args, j.id, j.action, j.key, j.source)
			}
			cmds[dest] = enqueueScript.EvalSha(ctx, pipe, keys, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for dest, c := range cmds {
			res, err := c.StringSlice()
			if err != nil {
				return err
			}
			if len(res) != len(byDest[dest]) {
				return fmt.Errorf("enqueue script returned %d results for %d jobs", len(res), len(byDest[dest]))
			}
			b := make([]byte, len(res))
			for i, r := range res {
				b[i] = r[0]
			}
			out[dest] = b
		}
		return nil
	})
	return out, err
}

// claimed is a job as a claim returns it.
type claimed struct {
	id, action, key, source string
	enqueued                time.Time
	attempts                int
	first                   time.Time // zero before the first attempt
	log                     string
	content                 string
	final                   string // the final mark, "" if none
}

// claim claims up to limit due jobs of dest for lease, under token.
func (q queue) claim(ctx context.Context, dest string, now, leaseUntil time.Time, limit int, token string) ([]claimed, error) {
	ids, err := q.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: q.zset(dest), ByScore: true,
		Start: "-inf", Stop: itoa(ms(now)), Count: int64(limit)}).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var out []claimed
	err = q.withScripts(ctx, func() error {
		keys := make([]string, 0, 2+2*len(ids))
		keys = append(keys, q.zset(dest), q.ages(dest))
		args := make([]any, 0, 3+len(ids))
		args = append(args, ms(now), ms(leaseUntil), token)
		for _, id := range ids {
			keys = append(keys, q.job(dest, id), q.finalKey(dest, id))
			args = append(args, id)
		}
		res, err := claimScript.EvalSha(ctx, q.rdb, keys, args...).StringSlice()
		if err != nil {
			return err
		}
		if len(res)%10 != 0 {
			return fmt.Errorf("claim script returned %d strings", len(res))
		}
		out = make([]claimed, 0, len(res)/10)
		for i := 0; i < len(res); i += 10 {
			r := res[i : i+10]
			e, _ := strconv.ParseInt(r[4], 10, 64)
			n, _ := strconv.Atoi(r[5])
			c := claimed{id: r[0], action: r[1], key: r[2], source: r[3], enqueued: fromMS(e), attempts: n,
				log: r[7], content: r[8], final: r[9]}
			if f, _ := strconv.ParseInt(r[6], 10, 64); f > 0 {
				c.first = fromMS(f)
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// retry is a claimed job to put back for a later attempt.
type retry struct {
	id, token       string
	next, first     time.Time
	attempts        int
	log, newContent string
}

// finalMark is a job's final mark, to write.
type finalMark struct {
	id, value string
}

// settle writes the final marks and puts the retries back, in one
// pipeline.
func (q queue) settle(ctx context.Context, dest string, marks []finalMark, retries []retry, markTTL time.Duration) error {
	if len(marks) == 0 && len(retries) == 0 {
		return nil
	}
	return q.withScripts(ctx, func() error {
		pipe := q.rdb.Pipeline()
		for _, m := range marks {
			pipe.Set(ctx, q.finalKey(dest, m.id), m.value, markTTL)
		}
		if len(retries) > 0 {
			keys := make([]string, 0, 1+len(retries))
			keys = append(keys, q.zset(dest))
			args := make([]any, 0, 7*len(retries))
			for _, r := range retries {
				keys = append(keys, q.job(dest, r.id))
				f := int64(0)
				if !r.first.IsZero() {
					f = ms(r.first)
				}
				args = append(args, r.token, r.id, ms(r.next), r.attempts, f, r.log, r.newContent)
			}
			rescheduleScript.EvalSha(ctx, pipe, keys, args...)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}

// finish removes finished jobs (their final marks written, their outcomes
// acknowledged) whose claim is still theirs.
func (q queue) finish(ctx context.Context, dest string, ids, tokens []string) error {
	if len(ids) == 0 {
		return nil
	}
	return q.withScripts(ctx, func() error {
		keys := make([]string, 0, 2+len(ids))
		keys = append(keys, q.zset(dest), q.ages(dest))
		args := make([]any, 0, 2*len(ids))
		for i, id := range ids {
			keys = append(keys, q.job(dest, id))
			args = append(args, tokens[i], id)
		}
		return finishScript.EvalSha(ctx, q.rdb, keys, args...).Err()
	})
}

// stats returns how many jobs of dest are pending and when the oldest
// was scheduled (zero when none).
func (q queue) stats(ctx context.Context, dest string) (int64, time.Time, error) {
	pipe := q.rdb.Pipeline()
	n := pipe.ZCard(ctx, q.zset(dest))
	oldest := pipe.ZRangeWithScores(ctx, q.ages(dest), 0, 0)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, time.Time{}, err
	}
	var at time.Time
	if zs := oldest.Val(); len(zs) > 0 {
		at = fromMS(int64(zs[0].Score))
	}
	return n.Val(), at, nil
}
