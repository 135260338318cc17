package writer

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
)

// WriteOutcomes writes delivery outcomes to the outcomes topic, with the
// retry semantics of [Writer.Publish]: it returns nil once Kafka has
// acknowledged every one. Each outcome is keyed by [actions.Outcome.Key]
// (its action id), valued by its JSON (times in UTC), with the headers
// whenthen-action-id and whenthen-workspace.
func (w *Writer) WriteOutcomes(ctx context.Context, outs []actions.Outcome) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	msgs, err := encodeOutcomes(outs)
	if err != nil {
		return err
	}
	return w.outcomes().write(ctx, msgs)
}

// outcomes returns the outcomes topic's writer, made on first use.
func (w *Writer) outcomes() *topicWriter {
	w.outsMu.Lock()
	defer w.outsMu.Unlock()
	if w.outs == nil {
		w.outs = w.newTW(w.outsTopic)
	}
	return w.outs
}

func encodeOutcomes(outs []actions.Outcome) ([]kafka.Message, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	msgs := make([]kafka.Message, len(outs))
	for i := range outs {
		o := outs[i] // a copy: its times are set to UTC
		o.At = o.At.UTC()
		if len(o.AttemptLog) > 0 {
			log := make([]actions.Attempt, len(o.AttemptLog))
			for j, a := range o.AttemptLog {
				a.At = a.At.UTC()
				log[j] = a
			}
			o.AttemptLog = log
		}
		v, err := json.Marshal(&o)
		if err != nil {
			return nil, fmt.Errorf("writer: encode outcome of %s: %w", o.ActionID, err)
		}
		var key []byte
		if k := o.Key(); k != "" {
			key = []byte(k)
		}
		msgs[i] = kafka.Message{Key: key, Value: v, Headers: []kafka.Header{
			{Key: actions.HeaderActionID, Value: []byte(o.ActionID)},
			{Key: actions.HeaderWorkspace, Value: []byte(o.Workspace)},
		}}
	}
	return msgs, nil
}
