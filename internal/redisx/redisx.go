// Package redisx holds Redis helpers shared by the dev mode, the
// benchmark suite and the tests.
package redisx

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DeletePrefix deletes every key that starts with prefix, a page of SCAN
// at a time (UNLINK, so large values are freed in the background).
// Characters of prefix that are special in a SCAN pattern match
// themselves.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	pattern := globEscaper.Replace(prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
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
