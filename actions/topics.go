package actions

import "time"

// Default topic names.
const (
	DefaultActionsTopic = "automations.actions"
	DefaultRunsTopic    = "automations.runs"
	DefaultDLQTopic     = "automations.dlq"
)

// Message headers: what the writer (package actions/writer) sets on each
// record, for consumers to route and deduplicate on without parsing the
// value. An action carries HeaderActionID and HeaderWorkspace, a run
// HeaderRunID and HeaderWorkspace, a dead letter the HeaderDLQ* and
// HeaderSource* headers.
const (
	HeaderActionID        = "whenthen-action-id"
	HeaderRunID           = "whenthen-run-id"
	HeaderWorkspace       = "whenthen-workspace"
	HeaderDLQReason       = "whenthen-dlq-reason"
	HeaderDLQDetail       = "whenthen-dlq-detail"
	HeaderSourceTopic     = "whenthen-source-topic"
	HeaderSourcePartition = "whenthen-source-partition"
	HeaderSourceOffset    = "whenthen-source-offset"
	HeaderSourceTime      = "whenthen-source-time" // extension: RFC 3339, when DeadLetter.Time is set
)

// MaxDetailBytes is the longest whenthen-dlq-detail header; longer details
// are cut at a UTF-8 boundary.
const MaxDetailBytes = 1024

// DeadLetter is a message that could not be processed, with where it came
// from and why.
type DeadLetter struct {
	Key, Value []byte    // the original message's, written unchanged
	Reason     string    // short fixed code, such as "invalid_json"; "unknown" if empty
	Detail     string    // human-readable cause; must not quote the payload
	Topic      string    // source topic
	Partition  int       // source partition
	Offset     int64     // source offset
	Time       time.Time // source message time; zero if unknown
}
