// Package crm is whenthen's record model: the schema of CRM objects
// (account, opportunity, lead, contact, with their standard and custom
// fields) and of the tracker, call participant and event types; typed
// records built from decoded JSON or read straight from it; and the CEL
// type provider that makes records CEL objects.
//
// It is what the decoders (package ingest) and the rule language (package
// rules) share, in the way Prometheus keeps its data model apart from its
// rule evaluation. Records are immutable once built: Merge and the
// decoders return new ones.
//
// schema.go holds the schema and its file format (docs/schema.md),
// picklist.go the values a schema file may list for a string field,
// record.go typed records and their limits, record_json.go their JSON
// form, record_bin.go their compact binary form (stored snapshots),
// unknown.go the members of that JSON no field holds, provider.go
// the CEL type provider: a misspelled field is a check
// error, an absent field reads as its type's zero value (as in proto3),
// and has() tells whether a field is present.
package crm
