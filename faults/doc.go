// Package faults is whenthen's fault-injection suite: it runs the service
// (as a `whenthen run` child process, or in-process) against a kfake
// broker and a real redis-server, breaks what they depend on (the
// process killed, Redis or Kafka unreachable, slow, restarted empty,
// replies lost, writes timed out, rebalances, poison messages) and checks
// what docs/guarantees.md promises: no input event's actions lost, offsets
// never committed past unanswered messages, duplicates only with the
// same action_id and only from the documented steps.
//
// `go test ./faults/` runs the short form (a few faults each, about a
// minute with -race); `go test ./faults/ -faults.long` (or
// WHENTHEN_FAULTS_LONG=1) runs the long form and writes the figures to
// faults/results/ (JSON and markdown). Every case logs a one-line summary.
//
// The package's only non-test code is [Proxy], a TCP proxy the tests put
// between the service and Redis or Kafka to cut, slow down or reset
// connections.
package faults
