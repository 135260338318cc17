package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/internal/jsonx"
)

// DefaultTopic is the input topic of docs/events.md.
const DefaultTopic = "crm.events"

// Decoder turns the key and value of one Kafka message into an event. An
// error is a *DecodeError when the message itself is at fault; the message
// then goes to the dead-letter topic. Decoders are safe for concurrent use.
type Decoder interface {
	Decode(key, value []byte) (*engine.Event, error)
}

// DecoderOptions configures the decoders.
type DecoderOptions struct {
	// Schema types the records. Required.
	Schema *crm.Schema
	// Limits caps record values (string bytes, list length, map entries,
	// map depth); default crm.DefaultLimits.
	Limits crm.Limits
	// MaxBytes is the largest message value accepted; default 1 MiB.
	MaxBytes int
	// MaxDepth is the deepest nesting of JSON objects and arrays accepted,
	// the top-level object being depth 1; default 32, at least 8.
	MaxDepth int
	// MaxElements is the most elements of one JSON array, or members of one
	// JSON object, anywhere in a message; it bounds the memory a message can
	// make the decoder allocate whatever MaxBytes is. Default 4096, raised
	// to Limits.MaxListLen and Limits.MaxMapEntries if either is larger.
	MaxElements int
	// OnUnknownFields, if set, is called with each event decoded whose
	// records hold members that are no field of their object (or, for
	// Debezium, columns mapped to no field), which the decoder drops:
	// each object and name once per event. It is called from Decode, so
	// it must be safe for concurrent use; it must not keep fields.
	// UnknownFieldMetrics.Observe counts them (unknown.go).
	OnUnknownFields func(ev *engine.Event, fields []crm.UnknownField)
}

// Defaults of DecoderOptions.
const (
	DefaultMaxBytes    = 1 << 20
	DefaultMaxDepth    = 32
	DefaultMaxElements = 4096
	minMaxDepth        = 8
)

func (o DecoderOptions) withDefaults() (DecoderOptions, error) {
	if o.Schema == nil {
		return o, errors.New("ingest: DecoderOptions.Schema is required")
	}
	if o.MaxBytes < 0 || o.MaxDepth < 0 || o.MaxElements < 0 {
		return o, errors.New("ingest: DecoderOptions.MaxBytes, MaxDepth and MaxElements must not be negative")
	}
	if o.MaxDepth != 0 && o.MaxDepth < minMaxDepth {
		return o, fmt.Errorf("ingest: DecoderOptions.MaxDepth %d is below the minimum of %d", o.MaxDepth, minMaxDepth)
	}
	d := crm.DefaultLimits
	if o.Limits.MaxStringBytes <= 0 {
		o.Limits.MaxStringBytes = d.MaxStringBytes
	}
	if o.Limits.MaxListLen <= 0 {
		o.Limits.MaxListLen = d.MaxListLen
	}
	if o.Limits.MaxMapEntries <= 0 {
		o.Limits.MaxMapEntries = d.MaxMapEntries
	}
	if o.Limits.MaxDepth <= 0 {
		o.Limits.MaxDepth = d.MaxDepth
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxElements == 0 {
		o.MaxElements = max(DefaultMaxElements, o.Limits.MaxListLen, o.Limits.MaxMapEntries)
	}
	return o, nil
}

// precheck runs the checks common to every JSON decoder, in order of cost:
// empty, size, UTF-8, then jsonx.Validate: one pass over the bytes
// validating the syntax (exactly one JSON object), depth, element counts,
// duplicate keys and escaped lone surrogates. keys are the known top-level
// keys, at most 64: a case variant of one is a duplicate_key. The result
// has bit i set when the top-level object has key keys[i].
func precheck(value []byte, o *DecoderOptions, keys [][]byte) (uint64, *DecodeError) {
	return precheckAt(value, o, keys, nil)
}

// precheckAt is precheck that also sets offs[i], when the top-level object
// has key keys[i], to the offset in value of that member's value. offs is
// nil or as long as keys.
func precheckAt(value []byte, o *DecoderOptions, keys [][]byte, offs []int) (uint64, *DecodeError) {
	if isEmpty(value) {
		return 0, decodeErr(ReasonEmpty, "empty message (tombstone)")
	}
	if len(value) > o.MaxBytes {
		return 0, decodeErr(ReasonTooLarge, "message of %d bytes is over the limit of %d", len(value), o.MaxBytes)
	}
	if !utf8.Valid(value) {
		return 0, decodeErr(ReasonInvalidUTF8, "message is not valid UTF-8")
	}
	return validate(value, o, keys, offs)
}

// validate runs jsonx.Validate on value with the limits of o, as
// precheckAt does after the cheaper checks.
func validate(value []byte, o *DecoderOptions, keys [][]byte, offs []int) (uint64, *DecodeError) {
	present, err := jsonx.Validate(value, jsonx.ValidateOptions{MaxDepth: o.MaxDepth, MaxElements: o.MaxElements, Keys: keys}, offs)
	if err != nil {
		return 0, validateError(err, value, keys)
	}
	return present, nil
}

// isEmpty reports whether a value is a tombstone: no bytes, only white
// space, or the JSON literal null.
func isEmpty(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

// validateReasons are the reasons of the kinds of jsonx.ValidateError.
var validateReasons = [...]string{
	jsonx.BadSyntax:      ReasonInvalidJSON,
	jsonx.NotObject:      ReasonInvalidJSON,
	jsonx.LoneSurrogate:  ReasonInvalidUTF8,
	jsonx.TooDeep:        ReasonTooDeep,
	jsonx.TooManyEntries: ReasonTooLarge,
	jsonx.DuplicateKey:   ReasonDuplicateKey,
	jsonx.CaseVariantKey: ReasonDuplicateKey,
}

// validateError turns an error of jsonx.Validate on value, given keys,
// into a DecodeError with its message (which quotes no value), worded for
// a message where jsonx speaks of data: a value that is not an object, one
// that ends too early, and a case variant of an envelope key.
func validateError(err error, value []byte, keys [][]byte) *DecodeError {
	var e *jsonx.ValidateError
	if !errors.As(err, &e) || int(e.Kind) >= len(validateReasons) || validateReasons[e.Kind] == "" {
		return decodeErr(ReasonInternal, "%s", sanitize(err.Error()))
	}
	msg := e.Msg
	switch {
	case e.Kind == jsonx.NotObject:
		msg = "message is not a JSON object"
	case e.Kind == jsonx.BadSyntax && e.Offset == len(value):
		msg = "unexpected end of JSON input (truncated message?)"
	case e.Kind == jsonx.CaseVariantKey:
		msg = fmt.Sprintf("a key differs only in case from the envelope key %q", keys[e.Key])
	}
	return &DecodeError{Reason: validateReasons[e.Kind], Msg: msg}
}

// validWorkspace reports whether s is a workspace name: [A-Za-z0-9._-]{1,128}.
func validWorkspace(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// jsonKind names the JSON type of a decoded value, for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "number"
}

// recordError turns an error of crm.Object.NewRecord into a DecodeError,
// removing any value the message quotes. at names the envelope field
// holding the record.
func recordError(at string, err error) *DecodeError {
	var fe *crm.FieldValueError
	if errors.As(err, &fe) {
		return decodeErr(ReasonInvalidField, "%s.%s: %s", at, fe.Field, sanitize(fe.Msg))
	}
	return decodeErr(ReasonInvalidField, "%s: %s", at, sanitize(err.Error()))
}

// numberText returns the literal of a number decoded with UseNumber.
func numberText(v any) (string, bool) {
	n, ok := v.(json.Number)
	return string(n), ok
}
