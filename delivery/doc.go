// Package delivery is `whenthen deliver`: the service that carries out the
// actions the engine writes. It consumes automations.actions with its own
// consumer group (package ingest/consumer), routes each action to the
// destinations its [Config] names for the action's workspace and type,
// delivers it to each (a Standard Webhooks endpoint, an SMTP server, a
// Slack-compatible webhook: packages delivery/webhook, delivery/email,
// delivery/brief) and writes one outcome per action and destination
// (actions.Outcome) to automations.outcomes, dead-lettering what fails.
//
// The files: config.go and yamldecode.go read the config (every error at
// FILE:LINE:COL), plan.go compiles it (secrets, files, senders); handler.go
// schedules each batch of action records in Redis (queue.go: the keys and
// the scripts); dispatcher.go runs one destination's claims, attempts and
// settling; content.go builds what is sent (record snapshots through
// engine/store, allowed fields only); senders.go makes the calls;
// service.go is New, Run, Reload and Close, with /metrics, /healthz and
// /readyz.
//
// The guarantees (docs/guarantees.md, "Delivery"): every action is
// delivered or fails visibly (an outcome, a dead letter); the action id
// is the idempotency key (webhook-id); a final mark in Redis, written
// after the destination's acknowledgement and before the outcome, keeps a
// delivered action from being sent again, except when a process dies
// between the acknowledgement and the mark.
package delivery
