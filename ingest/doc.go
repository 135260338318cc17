// Package ingest reads CRM, tracker and schedule events from Kafka and
// decodes and validates them.
//
// A [Consumer] reads the input topic as a member of a consumer group and
// hands each partition's messages, in order, to a [Handler] in batches; it
// commits a batch's offsets once the handler returned nil for it (package
// pipeline's Pipeline.Handle is the service's handler).
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
// docs/events.md describes the accepted input and every reason.
package ingest
