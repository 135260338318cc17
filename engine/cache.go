package engine

import (
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
	c := &StateCache{budget: b, entries: map[store.RecordRef]*cacheEntry{}}
	c.lru.prev, c.lru.next = &c.lru, &c.lru
	return c
}

// Used is the bytes the caches of the budget hold.
func (b *CacheBudget) Used() int64 { return b.used.Load() }

// StateCache is the state cache of one input partition. It is safe for
// concurrent use, though a partition's batches come one at a time.
type StateCache struct {
	budget  *CacheBudget
	mu      sync.Mutex
	entries map[store.RecordRef]*cacheEntry
	// lru is the sentinel of a ring of the entries, most recently used
	// first (lru.next).
	lru   cacheEntry
	n     int
	bytes int64
}

type cacheEntry struct {
	ref        store.RecordRef
	data       []byte
	size       int64
	prev, next *cacheEntry
}

func (c *StateCache) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *StateCache) pushFront(e *cacheEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
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
	c.entries = map[store.RecordRef]*cacheEntry{}
	c.lru.prev, c.lru.next = &c.lru, &c.lru
	c.n, c.bytes = 0, 0
}

// get returns the stored form of ref's snapshot, if the cache has it.
func (c *StateCache) get(ref store.RecordRef) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[ref]
	if !ok {
		return nil, false
	}
	c.unlink(e)
	c.pushFront(e)
	return e.data, true
}

// put keeps data as ref's stored snapshot, evicting the least recently
// used entries while the budget is over.
func (c *StateCache) put(ref store.RecordRef, data []byte) {
	size := int64(len(data)+len(ref.Workspace)+len(ref.Object)+len(ref.ID)) + cacheEntryOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[ref]
	switch {
	case size > c.budget.max:
		if ok {
			c.drop(e)
		}
		return
	case ok: // the usual case: a record seen before, updated in place
		c.unlink(e)
		c.bytes += size - e.size
		c.budget.used.Add(size - e.size)
		e.data, e.size = data, size
	default:
		e = &cacheEntry{ref: ref, data: data, size: size}
		c.entries[ref] = e
		c.n++
		c.bytes += size
		c.budget.used.Add(size)
	}
	c.pushFront(e)
	for c.budget.used.Load() > c.budget.max && c.n > 1 {
		c.drop(c.lru.prev)
	}
}

// remove forgets ref (the record was deleted).
func (c *StateCache) remove(ref store.RecordRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[ref]; ok {
		c.drop(e)
	}
}

func (c *StateCache) drop(e *cacheEntry) {
	c.unlink(e)
	delete(c.entries, e.ref)
	c.n--
	c.bytes -= e.size
	c.budget.used.Add(-e.size)
}

// len is the number of entries, for tests.
func (c *StateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
