package store

import "github.com/whenthen/whenthen/actions"

// Effective statuses of a run: its outcome, and for a completed run with
// actions, what delivering them came to (docs/history.md, "Status").
const (
	// StatusCompleted: a completed run without actions (nothing to deliver).
	StatusCompleted = "completed"
	// StatusDelivered: completed, and every destination of every action
	// acknowledged it (delivered or dry_run, or skipped as already
	// delivered).
	StatusDelivered = "delivered"
	// StatusDeliveryPending: completed, no action failed, and some action
	// has no outcome yet (whenthen deliver has not finished with it, or
	// does not run).
	StatusDeliveryPending = "delivery_pending"
	// StatusDeliveryFailed: completed, and some destination of some
	// action failed for good.
	StatusDeliveryFailed = "delivery_failed"
	// StatusDeliverySkipped: completed, every action has outcomes, none
	// failed, and some were skipped (no destination, no recipients).
	StatusDeliverySkipped = "delivery_skipped"
	// StatusSkipped and StatusError are the run's own outcome.
	StatusSkipped = actions.OutcomeSkipped
	StatusError   = actions.OutcomeError
)

// Statuses lists the effective statuses, in the order the page shows them.
var Statuses = []string{StatusDelivered, StatusCompleted, StatusDeliveryPending, StatusDeliverySkipped,
	StatusDeliveryFailed, StatusSkipped, StatusError}

// Delivery statuses of one action.
const (
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliverySkipped   = "skipped"
	DeliveryPending   = "pending"
)

// actionDelivery is what an action's outcomes (one per destination) come
// to: failed if any failed, pending if there is none, delivered if each
// acknowledged it, else skipped.
func actionDelivery(outs []actions.Outcome) string {
	if len(outs) == 0 {
		return DeliveryPending
	}
	res := DeliveryDelivered
	for _, o := range outs {
		switch o.Status {
		case actions.StatusFailed:
			return DeliveryFailed
		case actions.StatusDelivered, actions.StatusDryRun:
		case actions.StatusSkipped:
			if o.Reason != actions.ReasonAlreadyDelivered {
				res = DeliverySkipped
			}
		default: // not final yet
			if res == DeliveryDelivered {
				res = DeliveryPending
			}
		}
	}
	return res
}

// status is a run's effective status and, for a completed run with
// actions, the summary of its deliveries.
func status(r *Run, acts []Action) (string, *DeliverySummary) {
	if r.Outcome != actions.OutcomeCompleted {
		return r.Outcome, nil
	}
	if len(acts) == 0 {
		return StatusCompleted, nil
	}
	d := &DeliverySummary{Actions: len(acts)}
	for _, a := range acts {
		switch a.Delivery {
		case DeliveryDelivered:
			d.Delivered++
		case DeliveryFailed:
			d.Failed++
		case DeliverySkipped:
			d.Skipped++
		default:
			d.Pending++
		}
	}
	switch {
	case d.Failed > 0:
		return StatusDeliveryFailed, d
	case d.Pending > 0:
		return StatusDeliveryPending, d
	case d.Skipped > 0:
		return StatusDeliverySkipped, d
	}
	return StatusDelivered, d
}
