// Package engine decides which automations an event runs, what they do,
// and records every run, independent of Kafka.
//
// Process takes a batch of decoded events and returns the action and
// run-history records (package actions) in event order; Commit records
// the batch's state once Kafka has acknowledged those records. FireDue
// fires date timers the same way. Replay drives both in simulated time for
// `whenthen eval` and `whenthen test`.
//
// The files, in the order of one event's path through Process:
//
//   - event.go is the decoded input event the engine takes;
//   - engine.go is the batch: Process loads the record state the batch's
//     events need, runs each event (match, on_enter, claims) and turns
//     claims into outcomes (decide is the pure decision); Commit, at its
//     end, records the state once Kafka has acknowledged the outputs;
//   - index.go matches an event to candidate automations (workspace →
//     trigger group → equality and `in` predicates), and trigger.go's
//     Accepts decides for each candidate (the one place that does, also
//     for the authoring tools);
//   - activation.go binds the CEL variables once per event; related.go
//     loads the account and opportunity a condition reads; why.go gives
//     each run its why;
//   - state.go declares the Store the engine keeps its state behind (dedup
//     claims, enrollments, cooldowns, record snapshots and timers, asked
//     for in terms of workspaces, automations, records, persons and
//     windows, every window decided on the engine's injected `now`):
//     package store holds the Redis store of production and the in-memory
//     one of the offline tools; cache.go is the per-partition cache of
//     record snapshots in front of it;
//   - timers.go arms, re-arms, cancels and fires date timers (FireDue);
//     walks.go runs built-in schedules' ticks and timer re-arming over the
//     known records of an object;
//   - replay.go drives Process and FireDue in simulated time; explain.go
//     binds an event's variables for the authoring tools and copies the
//     state an event reads from one store to another (CopyState);
//     metrics.go holds the Prometheus metrics.
package engine
