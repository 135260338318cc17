// Package authoring owns the tools a rule author uses between writing an
// automation and shipping it: scenario tests, explanations and backtests.
// It decides nothing itself: every verdict comes from running events
// through engine.Replay with in-memory state, as production would run them.
//
//   - Tests (testfile.go, decoder.go, runner.go, match.go, coverage.go, junit.go):
//     YAML files of scenarios, each a list of events in simulated time and
//     the actions and runs expected of them, matched field by field; with
//     a readable diff on failure, JUnit XML, and coverage: which
//     automations ran, and which top-level clauses of each condition were
//     seen true and false.
//   - Explain (explain.go): for one event, every candidate automation,
//     whether its trigger matched, the value of each clause of its
//     condition, and the outcome it has or why it does not fire.
//   - Backtest (backtest.go, kafka.go): the same history replayed through
//     two rule sets, each with its own state, and the actions one produces
//     and the other does not, per automation. History comes from a JSONL
//     file or from a Kafka topic read without a consumer group.
//
// The tools read envelopes or Debezium change events, as the service
// does (decoder.go), and note the record fields the events carry that
// the schema does not declare, for warnings (unknown.go).
//
// cmd/whenthen's test, explain and backtest subcommands only parse flags
// and print what this package returns.
package authoring
