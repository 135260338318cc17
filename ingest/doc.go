// Package ingest reads CRM, tracker and schedule events from Kafka, decodes
// and validates them, and dead-letters what cannot be decoded.
//
// A Decoder turns the key and value of one Kafka message into an
// engine.Event. Two decoders exist: EnvelopeDecoder reads the JSON envelope
// of SPEC section 2, and DebeziumDecoder maps Debezium change events of
// configured tables onto it. Every message a decoder rejects yields a
// *DecodeError whose Reason is one of a small fixed set (Reasons), fit for
// a metric label and for the dead-letter header; Detail gives a message
// that names fields and types but never echoes payload values.
//
// docs/events.md describes the accepted input and every reason.
package ingest
