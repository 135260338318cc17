//go:build linux

package deploy

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/testenv"
)

var sizing = flag.Int("sizing", 0, "TestRedisSizing: measure Redis memory with this many records per case (e.g. 200000); 0 skips it")

// sizingRules keep what `whenthen run` keeps in Redis for the three
// cases: snapshots of opportunities (an on_enter flow needs the previous
// state), one dedup key per action (a brief on every opportunity
// created), and a date timer per account.
var sizingCases = []struct {
	name, rules string
	event       func(i int) string
}{
	{"snapshots", `
workspace: acme
automations:
  - id: won-flow
    when: {record: opportunity}
    if: record.stage == "Closed Won"
    fire: on_enter
    then:
      flow: {id: won, who: record.primary_contact_id}
`, oppEvent},
	{"snapshots+actions", `
workspace: acme
automations:
  - id: won-flow
    when: {record: opportunity}
    if: record.stage == "Closed Won"
    fire: on_enter
    then:
      flow: {id: won, who: record.primary_contact_id}
  - id: new-deal
    when: {record: opportunity, on: [created]}
    then:
      brief: {kind: opportunity, recipients: [owner]}
`, oppEvent},
	{"date timers", `
workspace: acme
automations:
  - id: renewal
    when:
      date: {record: account, field: renewal_date, offset: -720h}
    then:
      flow: {id: renewal, who: record.primary_contact_id}
`, accEvent},
}

// oppEvent is a typical opportunity's record.created: eight fields.
func oppEvent(i int) string {
	return fmt.Sprintf(`{"id":"e-%d","type":"record.created","time":"2026-12-01T10:00:00Z","workspace":"acme","object":"opportunity",`+
		`"record":{"id":"006Hs00001%08d","name":"Acme Corp - Platform renewal %d","account_id":"001Hs00001%08d","stage":"Prospecting",`+
		`"amount":%d,"close_date":"2027-03-31T00:00:00Z","owner_id":"005Hs000001%06d","primary_contact_id":"003Hs00001%08d"}}`,
		i, i, i, i, 1000+i%50000, i%1000, i)
}

func accEvent(i int) string {
	return fmt.Sprintf(`{"id":"a-%d","type":"record.created","time":"2026-12-01T10:00:00Z","workspace":"acme","object":"account",`+
		`"record":{"id":"001Hs00001%08d","name":"Acme Corp %d","tier":"Enterprise","industry":"Manufacturing","region":"EMEA",`+
		`"renewal_date":"2027-%02d-15T00:00:00Z","primary_contact_id":"003Hs00001%08d"}}`, i, i, i, 3+i%9, i)
}

// TestRedisSizing measures the Redis memory whenthen's state takes per
// record (docs/operations.md, "Sizing"): for each case it runs N events
// through `whenthen eval --redis-url` (the engine's own Redis state, as
// `whenthen run` keeps it) into a fresh redis-server and reads INFO
// memory's used_memory before and after. Run it with
//
//	scripts/with-redis.sh go test -run TestRedisSizing ./deploy/ -sizing 200000 -v
func TestRedisSizing(t *testing.T) {
	if *sizing == 0 {
		t.Skip("a measurement, not a check: run with -sizing N")
	}
	n := *sizing
	bin := staticBinary(t)
	for _, c := range sizingCases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			rules := filepath.Join(dir, "rules.yaml")
			if err := os.WriteFile(rules, []byte(c.rules), 0o644); err != nil {
				t.Fatal(err)
			}
			events := filepath.Join(dir, "events.jsonl")
			f, err := os.Create(events)
			if err != nil {
				t.Fatal(err)
			}
			bw := bufio.NewWriter(f)
			for i := range n {
				bw.WriteString(c.event(i))
				bw.WriteByte('\n')
			}
			if err := bw.Flush(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			srv := testenv.StartRedis(t, "--maxmemory-policy", "noeviction")
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			defer rdb.Close()
			before := usedMemory(t, rdb)
			t0 := time.Now()
			cmd := exec.Command(bin, "eval", "--rules", rules, "--events", events, "--redis-url", srv.URL(), "--redis-prefix", "wt:")
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = io.Discard, &stderr // the runs are not needed
			if err := cmd.Run(); err != nil {
				t.Fatalf("whenthen eval: %v\n%s", err, tailLines(stderr.String(), 20))
			}
			after := usedMemory(t, rdb)
			keys, _ := rdb.DBSize(context.Background()).Result()
			per := float64(after-before) / float64(n)
			t.Logf("%s: %d records in %.0fs: used_memory %d → %d bytes, %d keys: %.0f bytes per record, %.0f MiB per million",
				c.name, n, time.Since(t0).Seconds(), before, after, keys, per, per*1e6/(1<<20))
		})
	}
}

func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
