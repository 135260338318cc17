// Package engine decides which automations an event runs, what they do,
// and records every run, independent of Kafka.
//
// Process takes a batch of decoded events and returns the action and
// run-history records (package actions) in event order; Commit records
// the batch's state once Kafka has acknowledged those records. FireDue
// fires date timers the same way. Replay drives both in simulated time for
// `whenthen eval` and `whenthen test`.
//
// The files: index.go matches an event to candidate automations
// (workspace → trigger → equality and `in` predicates); engine.go builds
// the activation once per event, evaluates candidates, applies on_enter
// from the event's before or the stored record state, and turns claims
// into outcomes (decide is the pure decision); state.go declares the
// Store the engine keeps its state behind (dedup claims, enrollments,
// cooldowns, record snapshots and timers, asked for in terms of
// workspaces, automations, records, persons and windows, every window
// decided on the engine's injected `now`): package store holds the Redis
// store of production and the in-memory one of the offline tools;
// timers.go arms, re-arms, cancels and fires date timers; explain.go
// binds an event's variables for the authoring tools and copies the
// state an event reads from one store to another (CopyState).
package engine
