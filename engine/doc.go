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
// into outcomes (decide is the pure decision); store.go keeps dedup
// claims, enrollments, cooldowns, record snapshots and timers in Redis,
// each atomic decision one Lua script that takes the engine's injected
// `now`; timers.go arms, re-arms, cancels and fires date timers.
package engine
