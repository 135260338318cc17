// Package redisx holds what every whenthen process that talks to Redis
// shares: reading a Redis URL (one server or a Redis Cluster, with TLS)
// into client options and a client (url.go), and deleting a key prefix,
// for the dev mode, the benchmark suite and the tests.
package redisx

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeletePrefix deletes every key that starts with prefix, a page of SCAN
// at a time (UNLINK, so large values are freed in the background).
// Characters of prefix that are special in a SCAN pattern match
// themselves. On a cluster it scans every master and deletes one key a
// command (a command's keys must share a slot), a page in one pipeline.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	pattern := globEscaper.Replace(prefix) + "*"
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			return deletePattern(ctx, n, pattern, true)
		})
	}
	return deletePattern(ctx, rdb, pattern, false)
}

// DeletePrefixAt is DeletePrefix on a client of its own to the Redis at
// url (ParseURL), within timeout.
func DeletePrefixAt(url, prefix string, timeout time.Duration) error {
	rdb, err := NewClient(url)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return DeletePrefix(ctx, rdb, prefix)
}

func deletePattern(ctx context.Context, rdb redis.Cmdable, pattern string, perKey bool) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return err
		}
		switch {
		case len(keys) == 0:
		case perKey:
			pipe := rdb.Pipeline()
			for _, k := range keys {
				pipe.Unlink(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
		default:
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
