package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/delivery/brief"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/syncx"
)

// snapshotTimeout bounds reading an action's record snapshots.
const snapshotTimeout = 5 * time.Second

// The engine saves a batch's record snapshots once Kafka has
// acknowledged its actions, so an action can arrive here a moment before
// the snapshot of the event that fired it. An action fired by an event of
// its own record waits for that snapshot: it reads again, freshPoll
// apart, for at most freshWait after the action fired, then goes on with
// the snapshot there is (docs/delivery.md).
const (
	freshWait = 2 * time.Second
	freshPoll = 25 * time.Millisecond
)

// attempt is one try of one job at one destination: what a sender needs.
type attempt struct {
	act  *actions.Action
	raw  string // the action as consumed
	dest *dest
	plan *plan
	// content is what an earlier attempt built ("" for none): every
	// attempt sends the same.
	content string
	n       int // this attempt's number, from 1
	now     time.Time
	st      *store.Redis
	schema  *crm.Schema
	// pre holds the snapshots read with the claim (a missing key: not
	// read; a nil value: no snapshot).
	pre map[store.RecordRef]*store.Snapshot
}

// result is what an attempt came to.
type result struct {
	// status is final (delivered, skipped, dry_run); "" when it failed:
	// err says why, retryable whether it may succeed later.
	status     string
	reason     string
	httpStatus int
	err        error
	retryable  bool
	retryAfter time.Duration
	detail     string
	// content is what the attempt built, to keep for the next ("" if
	// nothing new).
	content string
	// tried is false when nothing was sent (no call made).
	tried bool
}

// sender carries an attempt out through one channel.
type sender interface {
	deliver(ctx context.Context, a *attempt) result
}

// recordView is a record as it leaves whenthen: allowed fields only.
type recordView struct {
	Object string          `json:"object"`
	ID     string          `json:"id"`
	AsOf   time.Time       `json:"as_of"`
	Fields json.RawMessage `json:"fields"`
	fields []brief.Field
}

func (r *recordView) brief() *brief.Record {
	return &brief.Record{Object: r.Object, ID: r.ID, AsOf: r.AsOf, Fields: r.fields}
}

// snapshotRefs are the records an action's content starts from: its
// record, and for a flow the person as a contact and as a lead.
func snapshotRefs(a *actions.Action) []store.RecordRef {
	var refs []store.RecordRef
	if a.Object != "" && a.RecordID != "" {
		refs = append(refs, store.RecordRef{Workspace: a.Workspace, Object: a.Object, ID: a.RecordID})
	}
	if a.Type == actions.TypeFlow && a.Flow != nil && a.Flow.PersonID != "" {
		refs = append(refs, store.RecordRef{Workspace: a.Workspace, Object: crm.ObjContact, ID: a.Flow.PersonID},
			store.RecordRef{Workspace: a.Workspace, Object: crm.ObjLead, ID: a.Flow.PersonID})
	}
	return refs
}

// load returns the snapshots of refs: those prefetched with the claim,
// the others read in one round trip.
func (a *attempt) load(ctx context.Context, refs []store.RecordRef) ([]*store.Snapshot, error) {
	out := make([]*store.Snapshot, len(refs))
	var miss []store.RecordRef
	var at []int
	for i, r := range refs {
		if s, ok := a.pre[r]; ok {
			out[i] = s
			continue
		}
		miss, at = append(miss, r), append(at, i)
	}
	if len(miss) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	snaps, err := a.st.LoadSnapshots(ctx, miss)
	if err != nil {
		return nil, fmt.Errorf("read record snapshots: %w", err)
	}
	for j, i := range at {
		out[i] = snaps[j]
	}
	return out, nil
}

// view is a snapshot as it leaves whenthen: the allowed fields, nil
// without a snapshot.
func (a *attempt) view(ref store.RecordRef, s *store.Snapshot) (*recordView, error) {
	if s == nil || s.Record == nil {
		return nil, nil
	}
	fs, err := recordFields(s.Record, a.plan.allowed(a.schema, ref.Workspace, ref.Object))
	if err != nil {
		return nil, err
	}
	obj := make([]byte, 0, 256)
	obj = append(obj, '{')
	for i, f := range fs {
		if i > 0 {
			obj = append(obj, ',')
		}
		obj = append(obj, '"')
		obj = append(obj, f.Name...)
		obj = append(obj, '"', ':')
		obj = append(obj, f.Value...)
	}
	obj = append(obj, '}')
	return &recordView{Object: ref.Object, ID: ref.ID, AsOf: s.Time, Fields: obj, fields: fs}, nil
}

// records loads the snapshots an action's content needs: its record;
// for a brief, the related account (from account_id, unless it is the
// account); for a flow, the person (a contact, else a lead). Missing
// snapshots are nil.
func (a *attempt) records(ctx context.Context) (rec, related, person *recordView, err error) {
	if a.st == nil {
		return nil, nil, nil, nil
	}
	refs := snapshotRefs(a.act)
	snaps, err := a.load(ctx, refs)
	if err != nil {
		return nil, nil, nil, err
	}
	if snaps, err = a.awaitOwn(ctx, refs, snaps); err != nil {
		return nil, nil, nil, err
	}
	i := 0
	if a.act.Object != "" && a.act.RecordID != "" {
		if rec, err = a.view(refs[0], snaps[0]); err != nil {
			return nil, nil, nil, err
		}
		i = 1
	}
	if a.act.Type == actions.TypeFlow && len(refs) > i {
		if person, err = a.view(refs[i], snaps[i]); err != nil || person != nil {
			return rec, nil, person, err
		}
		person, err = a.view(refs[i+1], snaps[i+1])
		return rec, nil, person, err
	}
	if a.act.Type == actions.TypeBrief && rec != nil && a.act.Object != crm.ObjAccount {
		if accID := recordText(rec, "account_id"); accID != "" {
			ref := store.RecordRef{Workspace: a.act.Workspace, Object: crm.ObjAccount, ID: accID}
			s, err := a.load(ctx, []store.RecordRef{ref})
			if err != nil {
				return nil, nil, nil, err
			}
			if related, err = a.view(ref, s[0]); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return rec, related, nil, nil
}

// firedByOwnEvent tells whether an action was fired by an event of its
// own record (not by a timer, a schedule tick, a tracker or a call).
func firedByOwnEvent(a *actions.Action) bool {
	return a.Object != "" && a.RecordID != "" &&
		!strings.HasPrefix(a.EventID, "timer-") && !strings.HasPrefix(a.EventID, "tick-")
}

// awaitOwn returns snaps with the action's own record (refs[0]) at least
// as new as the event that fired it, reading it again while it is older
// and the action fired less than freshWait ago.
func (a *attempt) awaitOwn(ctx context.Context, refs []store.RecordRef, snaps []*store.Snapshot) ([]*store.Snapshot, error) {
	if !firedByOwnEvent(a.act) || len(refs) == 0 {
		return snaps, nil
	}
	// A brief's record is kept by the engine (its snapshot exists once
	// committed); a flow's may not be (no automation of the workspace
	// reads it), so a flow waits only for a snapshot that is there and old.
	brief := a.act.Type == actions.TypeBrief
	fresh := func(s *store.Snapshot) bool {
		if s == nil {
			return !brief
		}
		return s.AsNewAs(a.act.EventTime)
	}
	deadline := a.act.FiredAt.Add(freshWait)
	for !fresh(snaps[0]) && time.Now().Before(deadline) {
		if !syncx.Sleep(ctx, freshPoll) {
			return nil, ctx.Err()
		}
		rctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
		s, err := a.st.LoadSnapshots(rctx, refs[:1])
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read record snapshots: %w", err)
		}
		snaps[0] = s[0]
	}
	return snaps, nil
}

// recordText is a string field of a view, "" if absent.
func recordText(r *recordView, name string) string {
	for _, f := range r.fields {
		if f.Name == name {
			var s string
			if json.Unmarshal(f.Value, &s) == nil {
				return s
			}
		}
	}
	return ""
}

// writtenBrief is a brief's content as jobs keep it.
type writtenBrief struct {
	brief.Brief
	Kind       string   `json:"kind"`
	Recipients []string `json:"recipients"`
}

// briefContent returns the attempt's brief: the one an earlier attempt
// wrote, or a new one (by the AI unless dryRun). fresh is its JSON when
// it is new.
func (a *attempt) briefContent(ctx context.Context, dryRun bool) (b writtenBrief, fresh string, err error) {
	if a.content != "" && json.Unmarshal([]byte(a.content), &b) == nil && b.Text != "" {
		return b, "", nil
	}
	rec, related, _, err := a.records(ctx)
	if err != nil {
		return b, "", err
	}
	in := brief.Input{Workspace: a.act.Workspace, AutomationID: a.act.AutomationID, ActionID: a.act.ActionID}
	if a.act.Brief != nil {
		in.Kind = a.act.Brief.Kind
		b.Kind, b.Recipients = a.act.Brief.Kind, a.act.Brief.Recipients
	}
	for _, r := range []*recordView{rec, related} {
		if r != nil {
			in.Records = append(in.Records, r.brief())
		}
	}
	bctx, cancel := context.WithTimeout(ctx, max(a.plan.aiTimeout, time.Second))
	defer cancel()
	b.Brief, err = a.plan.brief.Write(bctx, in, !dryRun)
	if err != nil {
		return b, "", err
	}
	js, err := json.Marshal(b)
	if err != nil {
		return b, "", err
	}
	return b, string(js), nil
}

// payload is the body of a webhook call (docs/delivery.md), in the shape
// Standard Webhooks recommends: type, timestamp, data.
type payload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      payloadData `json:"data"`
}

type payloadData struct {
	Action  json.RawMessage `json:"action"`
	Flow    *actions.Flow   `json:"flow,omitempty"`
	Brief   *writtenBrief   `json:"brief,omitempty"`
	Record  *recordView     `json:"record"`
	Person  *recordView     `json:"person,omitempty"`
	Related []*recordView   `json:"related,omitempty"`
}

// Webhook event types.
const (
	EventFlowEnroll = "flow.enroll"
	EventBriefSend  = "brief.send"
)

// webhookBody returns the attempt's body: an earlier attempt's, or a new
// one (fresh).
func (a *attempt) webhookBody(ctx context.Context, dryRun bool) (body []byte, fresh bool, err error) {
	if a.content != "" {
		return []byte(a.content), false, nil
	}
	p := payload{Timestamp: a.act.FiredAt.UTC(), Data: payloadData{Action: json.RawMessage(a.raw)}}
	switch a.act.Type {
	case actions.TypeFlow:
		p.Type = EventFlowEnroll
		p.Data.Flow = a.act.Flow
		rec, _, person, err := a.records(ctx)
		if err != nil {
			return nil, false, err
		}
		p.Data.Record, p.Data.Person = rec, person
	default:
		p.Type = EventBriefSend
		b, _, err := a.briefContent(ctx, dryRun)
		if err != nil {
			return nil, false, err
		}
		p.Data.Brief = &b
		rec, related, _, err := a.records(ctx)
		if err != nil {
			return nil, false, err
		}
		p.Data.Record = rec
		if related != nil {
			p.Data.Related = []*recordView{related}
		}
	}
	body, err = json.Marshal(p)
	return body, err == nil, err
}

// recipientList writes recipients for a detail: "user:u-7 (ana@x), email:y".
func recipientList(rs []string) string { return strings.Join(rs, ", ") }
