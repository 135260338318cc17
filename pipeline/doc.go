// Package pipeline is whenthen's main loop: the path of every input
// message from the Kafka consumer to the commit of its offset.
//
//	consumer   consumer.Consumer (package ingest/consumer) fetches the
//	           input topic and hands each
//	           partition's messages, in order, to Pipeline.Handle as a batch
//	pipeline   Pipeline.Handle, for each batch:
//	  decoder    Decoder.Decode: message → engine.Event; a message that fails
//	             is written to the dead-letter topic (Writer.DeadLetter) with
//	             ingest.Reason and ingest.Detail, and the batch goes on
//	  engine     Engine.ProcessCached: events → actions and runs, claimed
//	             in Redis (→ store), record snapshots read through the
//	             partition's cache
//	  writer     Writer.Publish: actions and runs, acknowledged by Kafka
//	  engine     Engine.Commit: the batch's state, in Redis
//	commit     Handle returned nil: consumer.Consumer marks the batch's
//	           offsets done and commits them every CommitInterval, up
//	           to the partition's contiguous done offset
//
// Date timers take the same path from the engine on: a round of
// [Pipeline.FireDue] is Engine.FireDue, Writer.Publish and Engine.Commit
// (which acknowledges the timers), retried the same way; the service's
// timer loop calls it every tick.
//
// The guarantees:
//
//   - An offset is committed only after the outputs of its message are
//     acknowledged by Kafka and the engine's state is committed: Handle
//     returns nil only then, and the consumer commits a partition only up
//     to its contiguous done offsets.
//   - No batch is skipped: a step that fails (Redis or Kafka unavailable,
//     a record Kafka refuses) is retried with backoff until it succeeds or
//     the service shuts down, and while it does, [Pipeline.Err] says so
//     (/readyz).
//   - A retry repeats only the failed step, with the same data: Process
//     with the same claim token, Publish and Commit with the same Output,
//     so the same deterministic action ids, and claims that stay ours.
//     A write that timed out may still land, so a record can be in Kafka
//     twice, always with its one id; consumers deduplicate on it.
//
// Interfaces are declared here, as the pipeline uses them: [Decoder]
// (ingest's decoders), [Engine] (*engine.Engine) and [Writer]
// (*writer.Writer).
package pipeline
