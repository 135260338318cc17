package engine

import (
	"fmt"
	"testing"

	"github.com/whenthen/whenthen/engine/store"
)

func TestStateCacheBudget(t *testing.T) {
	b := NewCacheBudget(10 * (100 + cacheEntryOverhead + 20))
	p1, p2 := b.Partition(), b.Partition()
	ref := func(i int) store.RecordRef {
		return store.RecordRef{Workspace: "acme", Object: "lead", ID: fmt.Sprintf("l%05d", i)}
	}
	data := make([]byte, 100)
	for i := range 8 {
		p1.put(ref(i), data)
	}
	for i := range 8 {
		p2.put(ref(100+i), data)
	}
	if b.Used() > b.max {
		t.Fatalf("used %d over the budget %d", b.Used(), b.max)
	}
	// p2 made room by evicting its own least recently used entries.
	if _, ok := p2.get(ref(100)); ok {
		t.Fatal("p2's oldest entry survived")
	}
	if _, ok := p2.get(ref(107)); !ok {
		t.Fatal("p2's newest entry is gone")
	}
	// A get makes an entry the most recently used.
	p1.get(ref(0))
	p1.put(ref(50), data)
	if _, ok := p1.get(ref(0)); !ok {
		t.Fatal("a recently read entry was evicted first")
	}
	// A record saved again replaces its entry: the count stays, the
	// bytes follow the new size.
	n1, used := p1.len(), b.Used()
	p1.put(ref(50), make([]byte, 110))
	if p1.len() != n1 || b.Used() != used+10 {
		t.Fatalf("update: %d entries (was %d), used %d (was %d)", p1.len(), n1, b.Used(), used)
	}
	if got, _ := p1.get(ref(50)); len(got) != 110 {
		t.Fatalf("update kept %d bytes", len(got))
	}
	before := b.Used()
	n := p2.len()
	p2.Reset()
	if p2.len() != 0 || b.Used() >= before || n == 0 {
		t.Fatalf("reset: %d entries, used %d (was %d)", p2.len(), b.Used(), before)
	}
	p1.remove(ref(0))
	if _, ok := p1.get(ref(0)); ok {
		t.Fatal("a removed entry is still there")
	}
	if NewCacheBudget(0).Partition() != nil {
		t.Fatal("a zero budget makes caches")
	}
}
