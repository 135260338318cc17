package engine

import (
	"sort"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

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
}

type wsIndex struct {
	groups map[groupKey]*group
	// dates are the date-triggered automations by object, grouped by the
	// date field they watch.
	dates map[string][]*dateGroup
	// stateful tells the objects whose record state must be kept: they
	// have on_enter or change-reading record rules, or date triggers.
	stateful map[string]bool
}

// group is the automations of one trigger within a workspace.
type group struct {
	fields []*fieldIndex
	scan   []*candidate
	all    []*candidate // every automation, for unindexed evaluation
}

type fieldIndex struct {
	field *rules.Field
	// byKey files candidates by rules.IndexKey of the constants; for string
	// fields the key is the string itself (a string field only ever holds
	// strings), which needs no allocation per lookup.
	byKey map[string][]*candidate
}

func (fi *fieldIndex) key(v ref.Val) (string, bool) {
	if fi.field.Kind == rules.KindString {
		s, ok := v.(types.String)
		return string(s), ok
	}
	return rules.IndexKey(v)
}

type candidate struct {
	a   *rules.Automation
	ord int // position in the set: candidates run in a stable order
	// pred is the index of the predicate the candidate is filed under, -1
	// when scanned.
	pred int
}

// groupKey names a trigger within a workspace; a struct key costs no
// allocation per lookup.
type groupKey struct {
	kind         rules.TriggerKind
	object, name string
}

func recordGroup(object string) groupKey { return groupKey{rules.TriggerRecord, object, ""} }
func trackerGroup(name string) groupKey  { return groupKey{rules.TriggerTracker, "", name} }
func scheduleGroup(name, object string) groupKey {
	return groupKey{rules.TriggerSchedule, object, name}
}

func buildIndex(set *rules.Set) *index {
	ix := &index{set: set, byWS: map[string]*wsIndex{}}
	for ord, a := range set.Automations {
		if !a.Enabled {
			continue
		}
		w := ix.byWS[a.Workspace]
		if w == nil {
			w = &wsIndex{groups: map[groupKey]*group{}, dates: map[string][]*dateGroup{}, stateful: map[string]bool{}}
			ix.byWS[a.Workspace] = w
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
			key = scheduleGroup(a.Trigger.Schedule, a.Trigger.Object)
		case rules.TriggerDate:
			g := w.dateGroup(a.Trigger.Object, a.Trigger.Date.Field.Name)
			if g == nil {
				g = &dateGroup{object: a.Trigger.Object, field: a.Trigger.Date.Field}
				w.dates[a.Trigger.Object] = append(w.dates[a.Trigger.Object], g)
			}
			g.autos = append(g.autos, a)
			w.stateful[a.Trigger.Object] = true
			continue
		}
		g := w.groups[key]
		if g == nil {
			g = &group{}
			w.groups[key] = g
		}
		g.all = append(g.all, &candidate{a: a, ord: ord, pred: -1})
	}
	for _, w := range ix.byWS {
		for _, g := range w.groups {
			g.file()
		}
	}
	return ix
}

// file files each candidate under its most selective predicate. A field
// whose constants across the group's conditions are many distinct values
// (an owner, an account) splits the candidates finer than one with few (a
// stage), so a predicate's score is the field's distinct constants in the
// group divided by the predicate's own number of values.
func (g *group) file() {
	distinct := map[*rules.Field]map[string]bool{}
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
	for _, c := range g.all {
		if c.a.If == nil || len(c.a.If.Index) == 0 {
			g.scan = append(g.scan, c)
			continue
		}
		best, bestScore := 0, -1.0
		for i, p := range c.a.If.Index {
			score := float64(len(distinct[p.Field])) / float64(len(p.Keys))
			if score > bestScore {
				best, bestScore = i, score
			}
		}
		g.add(c, best)
	}
}

func (g *group) add(c *candidate, best int) {
	c.pred = best
	p := c.a.If.Index[best]
	var fi *fieldIndex
	for _, f := range g.fields {
		if f.field == p.Field {
			fi = f
			break
		}
	}
	if fi == nil {
		fi = &fieldIndex{field: p.Field, byKey: map[string][]*candidate{}}
		g.fields = append(g.fields, fi)
	}
	seen := map[string]bool{}
	for _, v := range p.Values {
		k, ok := fi.key(v)
		if ok && !seen[k] {
			seen[k] = true
			fi.byKey[k] = append(fi.byKey[k], c)
		}
	}
}

// candidates appends to buf the automations of the group whose indexed
// predicate holds for rec (rec may be nil for triggers without a record),
// in set order.
func (g *group) candidates(rec *rules.Record, buf []*candidate) []*candidate {
	buf = append(buf, g.scan...)
	if rec != nil {
		for _, fi := range g.fields {
			if k, ok := fi.key(rec.FieldValue(fi.field)); ok {
				buf = append(buf, fi.byKey[k]...)
			}
		}
	}
	if len(g.fields) > 0 && len(buf) > 1 {
		sort.Slice(buf, func(i, j int) bool { return buf[i].ord < buf[j].ord })
	}
	return buf
}
