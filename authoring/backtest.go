package authoring

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/rules"
)

// BacktestOptions configures Backtest.
type BacktestOptions struct {
	// Schema types the records of both rule sets (required).
	Schema *crm.Schema
	// Baseline and New are the rule sets compared (required).
	Baseline, New *rules.Set
	// Decoder decodes the messages (required): ingest.EnvelopeDecoder for
	// the events of docs/events.md.
	Decoder ingest.Decoder
	// Until, if set, fires the timers due up to it after the last message.
	Until time.Time
	// Examples is how many added and removed actions are kept per
	// automation; default 3.
	Examples int
	// Logger receives the engines' warnings; default: discarded.
	Logger *slog.Logger
}

// Message is one message of the history replayed.
type Message struct {
	Key, Value []byte
	// Where locates the message for reports: FILE:LINE or
	// topic/partition@offset.
	Where string
}

// Source yields the history in order; Next returns io.EOF at its end.
type Source interface {
	Next(ctx context.Context) (Message, error)
}

// BacktestReport is what the new rules would have done differently.
type BacktestReport struct {
	// Events counts the events replayed; DeadLetters the messages that
	// could not be decoded (both rule sets skip them).
	Events      int              `json:"events"`
	DeadLetters int              `json:"dead_letters"`
	DeadLetter  []DeadLetterNote `json:"dead_letter_examples,omitempty"`
	Baseline    Totals           `json:"baseline"`
	New         Totals           `json:"new"`
	// Added and Removed count the actions the new rules produce that the
	// baseline does not, and the reverse.
	Added   int `json:"added"`
	Removed int `json:"removed"`
	// Automations lists every automation that produced an action or an
	// error run on either side, by id.
	Automations []*AutomationDiff `json:"automations"`
}

// DeadLetterNote is an undecodable message.
type DeadLetterNote struct {
	Where  string `json:"where"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// Totals counts one side's outputs.
type Totals struct {
	Actions int `json:"actions"`
	Runs    int `json:"runs"`
	// Errors counts runs with outcome error (evaluation errors).
	Errors int `json:"errors"`
}

// AutomationDiff is one automation's difference. Actions are compared by
// workspace, automation, event and target (the flow's person, or the
// brief's recipients): an action the baseline produces for the same event
// and target is the same action.
type AutomationDiff struct {
	ID string `json:"automation_id"`
	// In tells which rule sets have the automation: both, baseline or new.
	In       string `json:"in"`
	Baseline Totals `json:"baseline"`
	New      Totals `json:"new"`
	Added    int    `json:"added"`
	Removed  int    `json:"removed"`
	// AddedExamples and RemovedExamples are the first actions added and
	// removed, as action records.
	AddedExamples   []json.RawMessage `json:"added_examples,omitempty"`
	RemovedExamples []json.RawMessage `json:"removed_examples,omitempty"`

	addedText, removedText []string
}

// Changed tells whether the automation's actions or errors differ.
func (d *AutomationDiff) Changed() bool {
	return d.Added > 0 || d.Removed > 0 || d.Baseline.Errors != d.New.Errors
}

// Backtest replays the history of src through both rule sets, each on its
// own fresh in-memory state in simulated time, and compares the actions
// they produce, event by event.
func Backtest(ctx context.Context, opts BacktestOptions, src Source) (*BacktestReport, error) {
	if opts.Schema == nil || opts.Baseline == nil || opts.New == nil || opts.Decoder == nil {
		return nil, errors.New("authoring: BacktestOptions.Schema, Baseline, New and Decoder are required")
	}
	if opts.Examples <= 0 {
		opts.Examples = 3
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	base, err := newReplay(opts.Baseline, opts.Schema, opts.Logger)
	if err != nil {
		return nil, err
	}
	next, err := newReplay(opts.New, opts.Schema, opts.Logger)
	if err != nil {
		return nil, err
	}
	bt := &backtest{opts: opts, rep: &BacktestReport{}, byID: map[string]*AutomationDiff{}}
	for {
		m, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		ev, err := opts.Decoder.Decode(m.Key, m.Value)
		if err != nil {
			bt.rep.DeadLetters++
			if len(bt.rep.DeadLetter) < opts.Examples {
				bt.rep.DeadLetter = append(bt.rep.DeadLetter, DeadLetterNote{Where: m.Where, Reason: ingest.Reason(err), Detail: ingest.Detail(err)})
			}
			continue
		}
		bt.rep.Events++
		ob, err := base.Event(ctx, ev)
		if err != nil {
			return nil, fmt.Errorf("%s: baseline: %w", m.Where, err)
		}
		on, err := next.Event(ctx, ev)
		if err != nil {
			return nil, fmt.Errorf("%s: new: %w", m.Where, err)
		}
		bt.step(ob, on)
	}
	if !opts.Until.IsZero() {
		ob, err := base.Until(ctx, opts.Until)
		if err != nil {
			return nil, fmt.Errorf("until: baseline: %w", err)
		}
		on, err := next.Until(ctx, opts.Until)
		if err != nil {
			return nil, fmt.Errorf("until: new: %w", err)
		}
		bt.step(ob, on)
	}
	for _, d := range bt.byID {
		bt.rep.Automations = append(bt.rep.Automations, d)
	}
	sort.Slice(bt.rep.Automations, func(i, j int) bool { return bt.rep.Automations[i].ID < bt.rep.Automations[j].ID })
	return bt.rep, nil
}

type backtest struct {
	opts BacktestOptions
	rep  *BacktestReport
	byID map[string]*AutomationDiff
}

func (bt *backtest) diff(id string) *AutomationDiff {
	d := bt.byID[id]
	if d == nil {
		_, inB := bt.opts.Baseline.Automation(id)
		_, inN := bt.opts.New.Automation(id)
		d = &AutomationDiff{ID: id, In: "both"}
		switch {
		case inB && !inN:
			d.In = "baseline"
		case inN && !inB:
			d.In = "new"
		}
		bt.byID[id] = d
	}
	return d
}

// actionKey identifies an action across the two rule sets.
func actionKey(a *actions.Action) string {
	target := ""
	switch {
	case a.Flow != nil:
		target = "flow\x00" + a.Flow.ID + "\x00" + a.Flow.PersonID
	case a.Brief != nil:
		target = "brief\x00" + a.Brief.Kind + "\x00" + strings.Join(a.Brief.Recipients, "\x00")
	}
	return a.Workspace + "\x00" + a.AutomationID + "\x00" + a.EventID + "\x00" + target
}

// step compares the outputs of one event (and the timers it fired) on
// both sides. An action's key names its event, so an action both sides
// produce is produced in the same step.
func (bt *backtest) step(base, next []*engine.Output) {
	count := func(outs []*engine.Output, t *Totals, side func(*AutomationDiff) *Totals) map[string]*actions.Action {
		m := map[string]*actions.Action{}
		for _, o := range outs {
			for i := range o.Runs {
				r := &o.Runs[i]
				t.Runs++
				side(bt.diff(r.AutomationID)).Runs++
				if r.Outcome == actions.OutcomeError {
					t.Errors++
					side(bt.diff(r.AutomationID)).Errors++
				}
			}
			for i := range o.Actions {
				a := &o.Actions[i]
				t.Actions++
				side(bt.diff(a.AutomationID)).Actions++
				m[actionKey(a)] = a
			}
		}
		return m
	}
	mb := count(base, &bt.rep.Baseline, func(d *AutomationDiff) *Totals { return &d.Baseline })
	mn := count(next, &bt.rep.New, func(d *AutomationDiff) *Totals { return &d.New })
	for _, k := range sortedKeys(mn) {
		if _, ok := mb[k]; ok {
			continue
		}
		a := mn[k]
		d := bt.diff(a.AutomationID)
		d.Added++
		bt.rep.Added++
		if len(d.AddedExamples) < bt.opts.Examples {
			d.AddedExamples = append(d.AddedExamples, a.AppendJSON(nil))
			d.addedText = append(d.addedText, exampleText(a))
		}
	}
	for _, k := range sortedKeys(mb) {
		if _, ok := mn[k]; ok {
			continue
		}
		a := mb[k]
		d := bt.diff(a.AutomationID)
		d.Removed++
		bt.rep.Removed++
		if len(d.RemovedExamples) < bt.opts.Examples {
			d.RemovedExamples = append(d.RemovedExamples, a.AppendJSON(nil))
			d.removedText = append(d.removedText, exampleText(a))
		}
	}
}

func sortedKeys(m map[string]*actions.Action) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func exampleText(a *actions.Action) string {
	return fmt.Sprintf("event %s, %s %s: %s", a.EventID, a.Object, a.RecordID, actionText(a))
}

// WriteText prints the totals, then each automation whose actions or
// errors differ with up to Examples actions added and removed.
func (r *BacktestReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "backtest: %d %s", r.Events, plural(r.Events, "event"))
	if r.DeadLetters > 0 {
		fmt.Fprintf(w, " (%d undecodable %s skipped)", r.DeadLetters, plural(r.DeadLetters, "message"))
	}
	fmt.Fprintf(w, "; baseline %d %s, new %d %s: %d added, %d removed\n", r.Baseline.Actions, plural(r.Baseline.Actions, "action"),
		r.New.Actions, plural(r.New.Actions, "action"), r.Added, r.Removed)
	for _, d := range r.DeadLetter {
		fmt.Fprintf(w, "  undecodable: %s: %s: %s\n", d.Where, d.Reason, d.Detail)
	}
	if r.Baseline.Errors > 0 || r.New.Errors > 0 {
		fmt.Fprintf(w, "evaluation errors: baseline %d, new %d\n", r.Baseline.Errors, r.New.Errors)
	}
	same := 0
	for _, d := range r.Automations {
		if !d.Changed() {
			same++
			continue
		}
		fmt.Fprintf(w, "\n%s: +%d -%d actions (baseline %d, new %d)", d.ID, d.Added, d.Removed, d.Baseline.Actions, d.New.Actions)
		switch d.In {
		case "new":
			fmt.Fprint(w, ", new automation")
		case "baseline":
			fmt.Fprint(w, ", not in the new rules")
		}
		fmt.Fprintln(w)
		if d.Baseline.Errors != d.New.Errors {
			fmt.Fprintf(w, "  error runs: baseline %d, new %d\n", d.Baseline.Errors, d.New.Errors)
		}
		for _, t := range d.addedText {
			fmt.Fprintf(w, "  + %s\n", t)
		}
		if n := d.Added - len(d.addedText); n > 0 {
			fmt.Fprintf(w, "  + ... %d more\n", n)
		}
		for _, t := range d.removedText {
			fmt.Fprintf(w, "  - %s\n", t)
		}
		if n := d.Removed - len(d.removedText); n > 0 {
			fmt.Fprintf(w, "  - ... %d more\n", n)
		}
	}
	switch {
	case r.Added == 0 && r.Removed == 0 && same == len(r.Automations):
		fmt.Fprintf(w, "no differences (%d automations produced the same actions)\n", same)
	case same > 0:
		fmt.Fprintf(w, "\n%d other %s unchanged\n", same, plural(same, "automation"))
	}
}

// LineSource reads one message per line (JSONL), skipping blank lines.
type LineSource struct {
	name string
	sc   *bufio.Scanner
	line int
}

// NewLineSource reads messages from r; name locates them in reports.
func NewLineSource(r io.Reader, name string) *LineSource {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &LineSource{name: name, sc: sc}
}

// Next returns the next non-blank line.
func (s *LineSource) Next(ctx context.Context) (Message, error) {
	for s.sc.Scan() {
		s.line++
		b := s.sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		return Message{Value: append([]byte(nil), b...), Where: fmt.Sprintf("%s:%d", s.name, s.line)}, nil
	}
	if err := s.sc.Err(); err != nil {
		return Message{}, fmt.Errorf("read %s: %w", s.name, err)
	}
	return Message{}, io.EOF
}
