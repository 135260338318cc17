package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/whenthen/whenthen/crm"
)

// The stored forms of a record snapshot, the same in every store, each
// holding the time of the event that set it (Unix ms) and the record's
// present fields:
//
//   - binary (written by default): the byte snapshotBinaryV1, the time as a
//     zig-zag varint, then the record's binary encoding
//     (crm.Record.AppendBinary);
//   - JSON (written with Options.SnapshotEncoding "json", and by versions
//     before the binary form): {"t":UNIX_MS,"r":RECORD_JSON}.
//
// Both are read whatever the setting: a JSON form begins with '{' (or
// white space), never with snapshotBinaryV1. Running deployments hold
// snapshots in these forms: they never change; a new form takes a new
// first byte.
const snapshotBinaryV1 = 0xB1

// Snapshot encodings (Options.SnapshotEncoding).
const (
	EncodingBinary = "binary"
	EncodingJSON   = "json"
)

// snapshotBufSize is the first capacity of the buffer a batch's snapshots
// are encoded into: room for a few hundred typical records before it
// grows.
const snapshotBufSize = 128 << 10

// maxPooledBuf bounds the buffers kept for the next batch: a batch of
// huge records does not pin its buffer.
const maxPooledBuf = 1 << 20

var snapshotBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, snapshotBufSize)
	return &b
}}

func getSnapshotBuf() *[]byte { return snapshotBufs.Get().(*[]byte) }

func putSnapshotBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		*b = (*b)[:0]
		snapshotBufs.Put(b)
	}
}

// appendSnapshot appends the JSON stored form of a record and the time of
// the event that set it to dst.
func appendSnapshot(dst []byte, r *crm.Record, t time.Time) ([]byte, error) {
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t.UnixMilli(), 10)
	dst = append(dst, `,"r":`...)
	dst, err := r.AppendJSON(dst)
	if err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// appendBinarySnapshot appends the binary stored form.
func appendBinarySnapshot(dst []byte, r *crm.Record, t time.Time) ([]byte, error) {
	dst = binary.AppendVarint(append(dst, snapshotBinaryV1), t.UnixMilli())
	return r.AppendBinary(dst)
}

// splitSnapshot reads the form appendSnapshot writes without a JSON
// decoder: the time, and the record's JSON (which DecodeRecord validates).
func splitSnapshot(data []byte) (int64, []byte, bool) {
	const head, mid = `{"t":`, `,"r":`
	if !bytes.HasPrefix(data, []byte(head)) || len(data) < len(head)+len(mid)+3 || data[len(data)-1] != '}' {
		return 0, nil, false
	}
	rest := data[len(head):]
	i := bytes.IndexByte(rest, ',')
	if i <= 0 || !bytes.HasPrefix(rest[i:], []byte(mid)) {
		return 0, nil, false
	}
	t, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	if err != nil {
		return 0, nil, false
	}
	rec := rest[i+len(mid) : len(rest)-1]
	if len(rec) == 0 || rec[0] != '{' {
		return 0, nil, false
	}
	return t, rec, true
}

// snapshotCodec encodes and decodes snapshots with a store's schema and
// limits, and logs those it cannot (ids only: never a field value).
type snapshotCodec struct {
	schema *crm.Schema
	limits crm.Limits
	log    *slog.Logger
	json   bool // write the JSON form
}

func newSnapshotCodec(o Options) snapshotCodec {
	return snapshotCodec{schema: o.Schema, limits: o.Limits, log: o.Logger, json: o.SnapshotEncoding == EncodingJSON}
}

// encode appends sv's stored form to dst; ok is false, and dst unchanged,
// when the record cannot be encoded.
func (c snapshotCodec) encode(dst []byte, sv *Save) (_ []byte, ok bool) {
	var out []byte
	var err error
	if c.json {
		out, err = appendSnapshot(dst, sv.Record, sv.Time)
	} else {
		out, err = appendBinarySnapshot(dst, sv.Record, sv.Time)
	}
	if err != nil {
		c.log.Error("cannot encode record snapshot", "object", sv.Ref.Object, "record", sv.Ref.ID, "err", crm.Redact(err))
		return dst, false
	}
	return out, true
}

// decode reads a stored snapshot of ref. A snapshot the schema cannot read
// is treated as absent: nil, and a warning.
func (c snapshotCodec) decode(ref RecordRef, data []byte) *Snapshot {
	s, err := c.read(ref.Object, data)
	if err != nil {
		c.log.Warn("unreadable record snapshot", "object", ref.Object, "record", ref.ID, "err", crm.Redact(err))
		return nil
	}
	return s
}

func (c snapshotCodec) read(object string, data []byte) (*Snapshot, error) {
	o, ok := c.schema.Object(object)
	if !ok {
		return nil, fmt.Errorf("unknown object %q", object)
	}
	if len(data) > 0 && data[0] == snapshotBinaryV1 {
		t, n := binary.Varint(data[1:])
		if n <= 0 {
			return nil, errors.New("binary snapshot: bad time")
		}
		r, err := o.DecodeBinary(data[1+n:], c.limits)
		if err != nil {
			return nil, err
		}
		return &Snapshot{Record: r, Time: fromMS(t)}, nil
	}
	t, rec, ok := splitSnapshot(data)
	if !ok {
		// Not the exact form appendSnapshot writes (white space, key
		// order): read it as any JSON object of that shape.
		var raw struct {
			T int64           `json:"t"`
			R json.RawMessage `json:"r"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, err
		}
		t, rec = raw.T, raw.R
	}
	r, err := o.DecodeRecord(rec, c.limits)
	if err != nil {
		return nil, err
	}
	return &Snapshot{Record: r, Time: fromMS(t)}, nil
}
