package engine

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/whenthen/whenthen/engine/store"
)

// The per-partition state cache. A record's events arrive on one input
// partition (they are keyed by record id), so the instance that owns the
// partition is the only writer of the record's snapshot while it owns it:
// it can keep what it saved and read it back without asking the store.
// A StateCache is that memory for one partition: the stored form of the
// snapshots the engine saved for the partition's events (decoded on a hit,
// exactly as a load from the store would decode it), least recently used
// first out, within a byte budget shared by all partitions.
//
// The cache is right only while nobody else wrote those records: its owner
// (the pipeline) resets it whenever the partition's offsets do not follow
// on (the partition was owned by another instance meanwhile, or messages
// were skipped). Related records (an opportunity's account) and timer
// firings are read from the store, never from a cache: their events may
// be another partition's.

// DefaultCacheBytes is the default budget of the state caches of an engine.
const DefaultCacheBytes = 64 << 20

// cacheEntryOverhead is what an entry costs beyond its stored form: the
// map and list entries and the key strings, roughly.
const cacheEntryOverhead = 160

// CacheBudget bounds the bytes the state caches made from it hold
// together.
type CacheBudget struct {
	max  int64
	used atomic.Int64
}

// NewCacheBudget returns a budget of maxBytes for the state caches of all
// partitions; 0 or less turns caching off (Partition returns nil).
func NewCacheBudget(maxBytes int64) *CacheBudget { return &CacheBudget{max: maxBytes} }

// Partition returns a new, empty cache for one partition; nil when the
// budget is off.
func (b *CacheBudget) Partition() *StateCache {
	if b == nil || b.max <= 0 {
		return nil
	}
	return &StateCache{budget: b, entries: map[store.RecordRef]*list.Element{}}
}

// Used is the bytes the caches of the budget hold.
func (b *CacheBudget) Used() int64 { return b.used.Load() }

// StateCache is the state cache of one input partition. It is safe for
// concurrent use, though a partition's batches come one at a time.
type StateCache struct {
	budget  *CacheBudget
	mu      sync.Mutex
	entries map[store.RecordRef]*list.Element
	lru     list.List // of *cacheEntry, most recently used first
	bytes   int64
}

type cacheEntry struct {
	ref  store.RecordRef
	data []byte
	size int64
}

// Reset empties the cache: its partition's records may have been written
// by another instance.
func (c *StateCache) Reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.budget.used.Add(-c.bytes)
	c.entries = map[store.RecordRef]*list.Element{}
	c.lru.Init()
	c.bytes = 0
}

// get returns the stored form of ref's snapshot, if the cache has it.
func (c *StateCache) get(ref store.RecordRef) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[ref]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry).data, true
}

// put keeps data as ref's stored snapshot, evicting the least recently
// used entries while the budget is over.
func (c *StateCache) put(ref store.RecordRef, data []byte) {
	size := int64(len(data)+len(ref.Workspace)+len(ref.Object)+len(ref.ID)) + cacheEntryOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[ref]; ok {
		c.drop(el)
	}
	if size > c.budget.max {
		return
	}
	c.entries[ref] = c.lru.PushFront(&cacheEntry{ref: ref, data: data, size: size})
	c.bytes += size
	c.budget.used.Add(size)
	for c.budget.used.Load() > c.budget.max && c.lru.Len() > 1 {
		c.drop(c.lru.Back())
	}
}

// remove forgets ref (the record was deleted).
func (c *StateCache) remove(ref store.RecordRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[ref]; ok {
		c.drop(el)
	}
}

func (c *StateCache) drop(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.ref)
	c.bytes -= e.size
	c.budget.used.Add(-e.size)
}

// len is the number of entries, for tests.
func (c *StateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
