package redisx_test

import (
	"fmt"
	"testing"

	"github.com/whenthen/whenthen/internal/redisx"
	"github.com/whenthen/whenthen/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDeletePrefix(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := t.Context()
	// More keys than one SCAN page, keys that only look like the prefix
	// as a glob, and a key outside it.
	target := prefix + "a[1]*:"
	for i := 0; i < 1200; i++ {
		if err := rdb.Set(ctx, fmt.Sprintf("%sk%d", target, i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{prefix + "a1x:k", prefix + "a[1]y:k", prefix + "other"} {
		if err := rdb.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := redisx.DeletePrefix(ctx, rdb, target); err != nil {
		t.Fatal(err)
	}
	left, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 3 {
		t.Fatalf("left %d keys %v, want the 3 outside the prefix", len(left), left)
	}
}
