// Package ingest decodes and validates the input: CRM, call, tracker and
// schedule events, as Kafka messages read from the input topic
// (DefaultTopic) by package ingest/consumer, which hands them to package
// pipeline in batches.
//
// A Decoder turns the key and value of one Kafka message into an
// engine.Event. Two decoders exist: EnvelopeDecoder reads the JSON envelope
// of docs/events.md, and DebeziumDecoder maps Debezium change events of
// configured tables onto it. Every message a decoder rejects yields a
// *DecodeError whose Reason is one of a small fixed set (Reasons), fit for
// a metric label and for the dead-letter header; Detail gives a message
// that names fields and types but never echoes payload values, for the
// dead-letter record of the message (actions.DeadLetter). Record fields
// the schema does not declare are dropped, and reported to
// DecoderOptions.OnUnknownFields; UnknownFieldMetrics counts them
// (unknown.go).
//
// The files: decode.go holds what both decoders share (Decoder, their
// options, the validating pass of every message through internal/jsonx);
// envelope.go and debezium.go are the two decoders; reasons.go the reason
// codes, DecodeError and the dead-letter details; unknown.go the unknown
// fields. The *_ref_test.go files keep the implementations these replaced
// as fuzzing oracles.
//
// docs/events.md describes the accepted input and every reason.
package ingest
