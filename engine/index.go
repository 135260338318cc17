package engine

import (
	"slices"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/rules"
)

// index maps an event to the automations it can trigger: workspace, then
// trigger (object and event type, tracker name, schedule name), then the
// equality and `in` predicates of each condition. An event evaluates only
// the candidates whose indexed predicate holds; automations with nothing
// indexable are scanned.
type index struct {
	set  *rules.Set
	byWS map[string]*wsIndex
	// whys caches what the why of a run of each automation reads.
	whys *whyPlans
	// crons and dateGroups are every workspace's built-in schedules (in
	// rule order) and date groups, in one list each: what FireDue and
	// BindTicks look over, without visiting the workspaces that have none.
	crons      []*cronSchedule
	dateGroups []*dateGroup
}

type wsIndex struct {
	groups map[groupKey]*group
	// dates are the date-triggered automations by object, grouped by the
	// date field they watch.
	dates map[string][]*dateGroup
	// stateful tells the objects whose record state must be kept: they
	// have on_enter or change-reading record rules, date triggers, built-in
	// schedules, or automations of other objects that read them.
	stateful map[string]bool
	// reads tells the objects that some automation of the workspace reads
	// records of (record, schedule and date triggers on the object): their
	// partial events need the stored state to merge into.
	reads map[string]bool
}

// group is the automations of one trigger within a workspace.
type group struct {
	fields []*fieldIndex
	scan   []*candidate
	all    []*candidate // every automation, for unindexed evaluation
	// related is what the group's automations read of related records.
	related rules.Related
}

// fieldIndex files candidates by the values of one record field, or of
// two (a composite key: `record.industry == "X" && record.region == "Y"`
// is filed under the pair, so that an event meets only the automations of
// its own industry and region). Keys are the fields' fieldKey forms.
type fieldIndex struct {
	fields []*crm.Field             // one or two
	byOne  map[string][]*candidate  // one field (a string-keyed map has the faster lookup)
	byPair map[pairKey][]*candidate // two fields
}

// pairKey is the key of a two-field index.
type pairKey struct{ a, b string }

// maxCompositeKeys bounds the keys one candidate is filed under (the
// product of its two predicates' numbers of values).
const maxCompositeKeys = 16

// fieldKey is the index key of a field's value: the string itself for a
// string field (a string field only ever holds strings; no allocation per
// lookup), else rules.IndexKey.
func fieldKey(f *crm.Field, v ref.Val) (string, bool) {
	if f.Kind == crm.KindString {
		s, ok := v.(types.String)
		return string(s), ok
	}
	return rules.IndexKey(v)
}

// lookup appends the candidates filed under rec's values to buf.
func (fi *fieldIndex) lookup(rec *crm.Record, buf []*candidate) []*candidate {
	a, ok := fieldKey(fi.fields[0], rec.FieldValue(fi.fields[0]))
	if !ok {
		return buf
	}
	if fi.byOne != nil {
		return append(buf, fi.byOne[a]...)
	}
	b, ok := fieldKey(fi.fields[1], rec.FieldValue(fi.fields[1]))
	if !ok {
		return buf
	}
	return append(buf, fi.byPair[pairKey{a, b}]...)
}

type candidate struct {
	a   *rules.Automation
	ord int // position in the set: candidates run in a stable order
}

// groupKey names a trigger within a workspace; a struct key costs no
// allocation per lookup.
type groupKey struct {
	kind         rules.TriggerKind
	object, name string
}

func recordGroup(object string) groupKey { return groupKey{rules.TriggerRecord, object, ""} }
func trackerGroup(name string) groupKey  { return groupKey{rules.TriggerTracker, "", name} }
func callGroup() groupKey                { return groupKey{rules.TriggerCall, "", ""} }
func scheduleGroup(name, object string) groupKey {
	return groupKey{rules.TriggerSchedule, object, name}
}

func buildIndex(set *rules.Set, schema *crm.Schema) *index {
	ix := &index{set: set, byWS: map[string]*wsIndex{}, whys: &whyPlans{schema: schema}}
	for ord, a := range set.Automations {
		if !a.Enabled {
			continue
		}
		w := ix.byWS[a.Workspace]
		if w == nil {
			w = &wsIndex{groups: map[groupKey]*group{}, dates: map[string][]*dateGroup{}, stateful: map[string]bool{}, reads: map[string]bool{}}
			ix.byWS[a.Workspace] = w
		}
		if a.Trigger.Object != "" {
			w.reads[a.Trigger.Object] = true
		}
		if a.Brief != nil {
			// whenthen deliver writes a brief from its record's snapshot
			// and the related account's (docs/delivery.md).
			if a.Trigger.Object != "" {
				w.stateful[a.Trigger.Object] = true
			}
			w.stateful[crm.ObjAccount] = true
		}
		var key groupKey
		switch a.Trigger.Kind {
		case rules.TriggerRecord:
			key = recordGroup(a.Trigger.Object)
			if a.If != nil && (a.Fire == rules.FireOnEnter || a.If.ReadsBefore || a.If.ReadsChanged) {
				w.stateful[a.Trigger.Object] = true
			}
		case rules.TriggerTracker:
			key = trackerGroup(a.Trigger.Tracker)
		case rules.TriggerSchedule:
			if a.Trigger.Cron != nil {
				ix.crons = append(ix.crons, newCronSchedule(a))
				w.stateful[a.Trigger.Object] = true
				w.keepRelated(related(a))
				continue
			}
			key = scheduleGroup(a.Trigger.Schedule, a.Trigger.Object)
		case rules.TriggerCall:
			key = callGroup()
		case rules.TriggerDate:
			g := w.dateGroup(a.Trigger.Object, a.Trigger.Date.Field.Name)
			if g == nil {
				g = &dateGroup{workspace: a.Workspace, object: a.Trigger.Object, field: a.Trigger.Date.Field}
				w.dates[a.Trigger.Object] = append(w.dates[a.Trigger.Object], g)
			}
			g.autos = append(g.autos, a)
			if d := a.Trigger.Date; len(g.autos) == 1 || d.Offset > g.maxOffset {
				g.maxOffset = d.Offset
			}
			g.anyAt = g.anyAt || a.Trigger.Date.HasAt
			g.maxCatchUp = max(g.maxCatchUp, a.Trigger.Date.CatchUp)
			g.related |= related(a)
			w.stateful[a.Trigger.Object] = true
			w.keepRelated(related(a))
			continue
		}
		g := w.groups[key]
		if g == nil {
			g = &group{}
			w.groups[key] = g
		}
		g.all = append(g.all, &candidate{a: a, ord: ord})
		g.related |= related(a)
		w.keepRelated(related(a))
	}
	for _, w := range ix.byWS {
		for _, g := range w.groups {
			g.file()
		}
		for _, gs := range w.dates {
			for _, g := range gs {
				g.sig = g.signature()
				ix.dateGroups = append(ix.dateGroups, g)
			}
		}
	}
	return ix
}

// file files each candidate under its most selective predicate, together
// with the second most selective when that one splits further (score over
// 1) on another field. A field whose constants across the group's
// conditions are many distinct values (an owner, an account) splits the
// candidates finer than one with few (a stage), so a predicate's score is
// the field's distinct constants in the group divided by the predicate's
// own number of values.
func (g *group) file() {
	distinct := map[*crm.Field]map[string]bool{}
	for _, c := range g.all {
		if c.a.If == nil {
			continue
		}
		for _, p := range c.a.If.Index {
			if distinct[p.Field] == nil {
				distinct[p.Field] = map[string]bool{}
			}
			for _, k := range p.Keys {
				distinct[p.Field][k] = true
			}
		}
	}
	score := func(p *rules.Predicate) float64 {
		return float64(len(distinct[p.Field])) / float64(len(p.Keys))
	}
	for _, c := range g.all {
		if c.a.If == nil || len(c.a.If.Index) == 0 {
			g.scan = append(g.scan, c)
			continue
		}
		preds := c.a.If.Index
		best, second := -1, -1
		for i := range preds {
			switch {
			case best < 0 || score(&preds[i]) > score(&preds[best]):
				best, second = i, best
			case second < 0 || score(&preds[i]) > score(&preds[second]):
				second = i
			}
		}
		chosen := []*rules.Predicate{&preds[best]}
		if second >= 0 && preds[second].Field != preds[best].Field && score(&preds[second]) > 1 &&
			len(preds[best].Keys)*len(preds[second].Keys) <= maxCompositeKeys {
			// Order the pair by field index, so that a pair of fields has
			// one index whichever predicate came first.
			p, q := &preds[best], &preds[second]
			if q.Field.Index < p.Field.Index {
				p, q = q, p
			}
			chosen = []*rules.Predicate{p, q}
		}
		g.add(c, chosen)
	}
}

func (g *group) add(c *candidate, preds []*rules.Predicate) {
	var fi *fieldIndex
	for _, f := range g.fields {
		if len(f.fields) == len(preds) && f.fields[0] == preds[0].Field && (len(preds) == 1 || f.fields[1] == preds[1].Field) {
			fi = f
			break
		}
	}
	if fi == nil {
		fi = &fieldIndex{}
		for _, p := range preds {
			fi.fields = append(fi.fields, p.Field)
		}
		if len(preds) == 1 {
			fi.byOne = map[string][]*candidate{}
		} else {
			fi.byPair = map[pairKey][]*candidate{}
		}
		g.fields = append(g.fields, fi)
	}
	// keys are a predicate's distinct index keys.
	keys := func(p *rules.Predicate) []string {
		var out []string
		for _, v := range p.Values {
			if k, ok := fieldKey(p.Field, v); ok && !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
		return out
	}
	for _, a := range keys(preds[0]) {
		if fi.byOne != nil {
			fi.byOne[a] = append(fi.byOne[a], c)
			continue
		}
		for _, b := range keys(preds[1]) {
			fi.byPair[pairKey{a, b}] = append(fi.byPair[pairKey{a, b}], c)
		}
	}
}

// candidates appends to buf the automations of the group whose indexed
// predicates hold for rec (rec may be nil for triggers without a record),
// in set order.
func (g *group) candidates(rec *crm.Record, buf, scratch []*candidate) (cands, spare []*candidate) {
	if rec == nil {
		return g.candidatesFromRuns(nil, buf, scratch)
	}
	return g.candidatesFromRuns(func(fi *fieldIndex, buf []*candidate) []*candidate { return fi.lookup(rec, buf) }, buf, scratch)
}

// candidatesFromRuns is candidates with the index buckets looked up by
// lookup (nil: the scan list only).
//
// The scan list and each index bucket are in rule order (built from g.all
// in order; a candidate is in one of them only), so merging those runs
// puts the candidates in rule order without a sort: pairwise rounds of
// two-way merges, O(n log k) for n candidates in k runs, however many
// runs there are.
func (g *group) candidatesFromRuns(lookup func(*fieldIndex, []*candidate) []*candidate, buf, scratch []*candidate) (cands, spare []*candidate) {
	var endsBuf [16]int // a group has a few field indexes: no allocation
	ends := endsBuf[:0]
	mark := func() {
		if n := len(buf); n > 0 && (len(ends) == 0 || ends[len(ends)-1] != n) { // not an empty run
			ends = append(ends, n)
		}
	}
	buf = append(buf[:0], g.scan...)
	mark()
	if lookup != nil {
		for _, fi := range g.fields {
			buf = lookup(fi, buf)
			mark()
		}
	}
	for len(ends) > 1 {
		scratch = scratch[:0]
		start, out := 0, 0
		for i := 0; i < len(ends); i += 2 {
			if i+1 == len(ends) {
				scratch = append(scratch, buf[start:ends[i]]...)
			} else {
				scratch = mergeRuns(scratch, buf[start:ends[i]], buf[ends[i]:ends[i+1]])
				start = ends[i+1]
			}
			ends[out] = len(scratch)
			out++
		}
		ends = ends[:out]
		buf, scratch = scratch, buf
	}
	return buf, scratch
}

// mergeRuns appends the merge of a and b, both in rule order, to dst.
func mergeRuns(dst, a, b []*candidate) []*candidate {
	for len(a) > 0 && len(b) > 0 {
		if a[0].ord < b[0].ord {
			dst, a = append(dst, a[0]), a[1:]
		} else {
			dst, b = append(dst, b[0]), b[1:]
		}
	}
	dst = append(dst, a...)
	return append(dst, b...)
}

// keepRelated makes the workspace keep the snapshots of the related
// records its automations read.
func (w *wsIndex) keepRelated(r rules.Related) {
	if r&rules.RelatedAccount != 0 {
		w.stateful[crm.ObjAccount] = true
	}
	if r&rules.RelatedOpportunity != 0 {
		w.stateful[crm.ObjOpportunity] = true
	}
}

// relatedNeed is what the automations of ev's trigger group read of
// related records.
func (w *wsIndex) relatedNeed(ev *Event) rules.Related {
	var key groupKey
	switch ev.Type {
	case TypeRecordCreated, TypeRecordUpdated:
		key = recordGroup(ev.Object)
	case TypeTrackerDetected:
		if ev.Tracker == nil {
			return 0
		}
		key = trackerGroup(ev.Tracker.String("name"))
	case TypeCallProcessed:
		key = callGroup()
	case TypeScheduleFired:
		key = scheduleGroup(ev.Schedule, ev.Object)
	default:
		return 0
	}
	if g := w.groups[key]; g != nil {
		return g.related
	}
	return 0
}
