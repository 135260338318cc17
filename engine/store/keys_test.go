package store

import (
	"strconv"
	"strings"
	"testing"
)

// TestRecordKeys: record and known-record keys, built in one allocation,
// are the names running deployments hold their data under.
func TestRecordKeys(t *testing.T) {
	single, cluster := keys{prefix: "wt:"}, keys{prefix: "wt:", cluster: true}
	for _, c := range []struct {
		k           keys
		ref         RecordRef
		record, kno string
	}{
		{single, RecordRef{Workspace: "acme", Object: "opportunity", ID: "006A1"}, "wt:{acme}:r:opportunity:006A1", "wt:{acme}:k:opportunity"},
		{single, RecordRef{Object: "lead", ID: "x"}, "wt:{~}:r:lead:x", "wt:{~}:k:lead"},
		{cluster, RecordRef{Workspace: "acme", Object: "opportunity", ID: "006A1"},
			"wt:{acme:s" + strconv.Itoa(recordShard("006A1")) + "}:r:opportunity:006A1", "wt:{acme:s" + strconv.Itoa(recordShard("006A1")) + "}:k:opportunity"},
	} {
		if got := c.k.record(c.ref); got != c.record {
			t.Errorf("record(%+v) = %q, want %q", c.ref, got, c.record)
		}
		if got := c.k.known(c.ref.Workspace, c.ref.Object, c.ref.ID); got != c.kno {
			t.Errorf("known(%+v) = %q, want %q", c.ref, got, c.kno)
		}
		// The same tag as the known-record set of the record's shard.
		shard := c.k.knownShard(c.ref.Workspace, c.ref.Object, recordShard(c.ref.ID))
		if got, want := c.k.record(c.ref), strings.TrimSuffix(shard, "k:"+c.ref.Object)+"r:"+c.ref.Object+":"+c.ref.ID; got != want {
			t.Errorf("record %q, the shard's tag gives %q", got, want)
		}
		if got, want := c.k.known(c.ref.Workspace, c.ref.Object, c.ref.ID), c.k.knownShard(c.ref.Workspace, c.ref.Object, recordShard(c.ref.ID)); got != want {
			t.Errorf("known %q, knownShard gives %q", got, want)
		}
	}
	ref := RecordRef{Workspace: "acme", Object: "opportunity", ID: "006A1"}
	for _, k := range []keys{single, cluster} {
		if n := testing.AllocsPerRun(100, func() { _ = k.record(ref) }); n > 1 {
			t.Errorf("record key (cluster %v): %v allocations, want 1", k.cluster, n)
		}
	}
}
