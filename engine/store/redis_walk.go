package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The start script starts or resumes a walk (walk.go). ARGV: target,
// ordered (1: targets are Unix ms and only move forward), token, now, lease
// until. A live lease of another token keeps the walk busy, unless that
// walk is towards an older ordered target: a newer tick supersedes it.
var startWalkScript = redis.NewScript(`
local mark = redis.call('HGET', KEYS[1], 'mark')
local ordered = ARGV[2] == '1'
if mark then
  if (ordered and tonumber(ARGV[1]) <= tonumber(mark)) or ((not ordered) and mark == ARGV[1]) then return {'done', ''} end
end
local target = redis.call('HGET', KEYS[1], 'target')
local lease = redis.call('HGET', KEYS[1], 'lease')
if lease then
  local sep = string.find(lease, '|[^|]*$')
  if string.sub(lease, 1, sep - 1) ~= ARGV[3] and tonumber(string.sub(lease, sep + 1)) > tonumber(ARGV[4]) then
    if (not ordered) or (target and tonumber(target) >= tonumber(ARGV[1])) then return {'busy', ''} end
  end
end
if target ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'target', ARGV[1], 'cursor', '')
end
redis.call('HSET', KEYS[1], 'lease', ARGV[3] .. '|' .. ARGV[5])
return {'ours', redis.call('HGET', KEYS[1], 'cursor') or ''}
`)

// The advance script records a chunk of a walk done, by the token that
// holds its lease towards the same target; it releases the lease, so that
// any instance goes on. ARGV: target, token, cursor, done (1).
var advanceWalkScript = redis.NewScript(`
local lease = redis.call('HGET', KEYS[1], 'lease')
if not lease then return 0 end
local sep = string.find(lease, '|[^|]*$')
if string.sub(lease, 1, sep - 1) ~= ARGV[2] or redis.call('HGET', KEYS[1], 'target') ~= ARGV[1] then return 0 end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'mark', ARGV[1])
  redis.call('HDEL', KEYS[1], 'target', 'cursor', 'lease')
else
  redis.call('HSET', KEYS[1], 'cursor', ARGV[3])
  redis.call('HDEL', KEYS[1], 'lease')
end
return 1
`)

// WalkMarks returns the marks of walks ("" for none); a walk without a
// mark whose init is not "" gets init as its mark first (a schedule's
// first sight).
func (s *Redis) WalkMarks(ctx context.Context, refs []WalkRef, init []string) ([]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(refs))
	for i, r := range refs {
		k := s.keys.walk(r)
		if i < len(init) && init[i] != "" {
			pipe.HSetNX(ctx, k, "mark", init[i])
		}
		cmds[i] = pipe.HGet(ctx, k, "mark")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, err
	}
	out := make([]string, len(refs))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil && err != redis.Nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// StartWalks starts or resumes walks as token, holding each started one
// for the store's lease.
func (s *Redis) StartWalks(ctx context.Context, starts []WalkStart, token string, now time.Time) ([]WalkState, error) {
	if len(starts) == 0 {
		return nil, nil
	}
	out := make([]WalkState, len(starts))
	err := s.withScripts(ctx, func() error {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(starts))
		until := ms(now) + s.ttl.Lease.Milliseconds()
		for i, w := range starts {
			ordered := "0"
			if w.Ordered {
				ordered = "1"
			}
			cmds[i] = startWalkScript.EvalSha(ctx, pipe, []string{s.keys.walk(w.Ref)}, w.Target, ordered, token, ms(now), until)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, c := range cmds {
			res, err := c.StringSlice()
			if err != nil {
				return err
			}
			if len(res) != 2 {
				return fmt.Errorf("walk script returned %q", res)
			}
			switch res[0] {
			case "ours":
				out[i] = WalkState{Status: WalkOurs, Cursor: res[1]}
			case "done":
				out[i] = WalkState{Status: WalkDone}
			case "busy":
				out[i] = WalkState{Status: WalkBusy}
			default:
				return fmt.Errorf("walk script returned %q", res)
			}
		}
		return nil
	})
	return out, err
}

// KnownRecords returns up to count ids of the records known of the
// workspace's object, from cursor ("" at the start), and the cursor to go
// on from ("" when the walk is over). An id may come twice in one walk
// (Redis SSCAN); every id known throughout the walk comes at least once.
// In the cluster layout the known records are sets per record shard, and
// a cursor is SHARD:SSCAN_CURSOR; one call goes on to the next shards
// until it has count ids or the walk is over.
//
// SSCAN's COUNT is a hint: a small set (a listpack from Redis 7.2) comes
// whole in one reply, a hash table's bucket chain comes with its bucket.
// The ids past count are carried in the cursor (see knownCursor) and come
// first in the next chunk, so that a chunk never exceeds the caller's
// budget and no id of a reply is dropped.
func (s *Redis) KnownRecords(ctx context.Context, workspace, object, cursor string, count int) ([]string, string, error) {
	pos, err := s.parseKnownCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	n := max(count, 1)
	out := pos.carry
	for len(out) < n && pos.shard < s.keys.shards() {
		ids, next, err := s.rdb.SScan(ctx, s.keys.knownShard(workspace, object, pos.shard), pos.sscan, "", int64(n-len(out))).Result()
		if err != nil {
			return nil, "", err
		}
		out = append(out, ids...)
		if next == 0 {
			pos.shard++
		}
		pos.sscan = next
	}
	pos.carry = nil
	if len(out) > n {
		out, pos.carry = out[:n:n], out[n:]
	}
	if pos.shard >= s.keys.shards() && len(pos.carry) == 0 {
		return out, "", nil
	}
	c, err := s.knownCursor(pos)
	return out, c, err
}

// knownPos is where a walk of known records stands: the shard, the SSCAN
// cursor in it, and the ids of the last reply not yet given.
type knownPos struct {
	shard int
	sscan uint64
	carry []string
}

// knownCursor writes pos as SSCAN_CURSOR (SHARD:SSCAN_CURSOR in the
// cluster layout), "end" once every shard is scanned, then "|" and the
// carried ids as a JSON array when there are any.
func (s *Redis) knownCursor(pos knownPos) (string, error) {
	var c string
	switch {
	case pos.shard >= s.keys.shards():
		c = "end"
	case s.keys.cluster:
		c = strconv.Itoa(pos.shard) + ":" + strconv.FormatUint(pos.sscan, 10)
	default:
		c = strconv.FormatUint(pos.sscan, 10)
	}
	if len(pos.carry) == 0 {
		return c, nil
	}
	js, err := json.Marshal(pos.carry)
	if err != nil {
		return "", err
	}
	return c + "|" + string(js), nil
}

func (s *Redis) parseKnownCursor(cursor string) (knownPos, error) {
	var pos knownPos
	if cursor == "" {
		return pos, nil
	}
	bad := fmt.Errorf("known records: bad cursor %q", cursor)
	cur, carry, hasCarry := strings.Cut(cursor, "|")
	if hasCarry {
		if err := json.Unmarshal([]byte(carry), &pos.carry); err != nil || len(pos.carry) == 0 {
			return pos, bad
		}
	}
	if cur == "end" {
		if !hasCarry {
			return pos, bad
		}
		pos.shard = s.keys.shards()
		return pos, nil
	}
	sh := "0"
	if s.keys.cluster {
		var ok bool
		if sh, cur, ok = strings.Cut(cur, ":"); !ok {
			return pos, bad
		}
	}
	shard, err1 := strconv.Atoi(sh)
	c, err2 := strconv.ParseUint(cur, 10, 64)
	if err1 != nil || err2 != nil || shard < 0 || shard >= s.keys.shards() {
		return pos, bad
	}
	pos.shard, pos.sscan = shard, c
	return pos, nil
}

// SetWalkMark sets where a walk stands, dropping any walk in progress: for
// tools that rewind a schedule (`whenthen dev` shows a missed tick run
// late), not for the engine.
func (s *Redis) SetWalkMark(ctx context.Context, ref WalkRef, mark string) error {
	pipe := s.rdb.TxPipeline()
	k := s.keys.walk(ref)
	pipe.HDel(ctx, k, "target", "cursor", "lease")
	pipe.HSet(ctx, k, "mark", mark)
	_, err := pipe.Exec(ctx)
	return err
}
