// Package webhook is whenthen's outbound HTTP: Standard Webhooks
// signatures (https://www.standardwebhooks.com: [Sign], [Verify],
// [ParseSecrets]) and the client policy every outbound call of `whenthen
// deliver` follows ([Client]): a timeout on each phase, a cap on the
// response body, no redirect to another host, verified TLS, and a
// [Result] that says whether a failed call may be retried and when.
//
// A signed request carries three headers:
//
//	webhook-id:        the action id (the same on every attempt: receivers deduplicate on it)
//	webhook-timestamp: Unix seconds of the attempt
//	webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
//
// with one "v1," signature per secret, separated by spaces, while a secret
// is being rotated.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a signed request.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a secret in the Standard Webhooks form: the key is
// the base64 text that follows it.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a request's timestamp may be from the
// receiver's clock, as the reference libraries allow.
const DefaultTolerance = 5 * time.Minute

// Secret is one HMAC key. Its String method never shows the key.
type Secret struct{ key []byte }

func (Secret) String() string { return "webhook.Secret(…)" }

// ParseSecret reads a secret: "whsec_" and base64 of the key bytes (the
// Standard Webhooks form, standard or URL-safe alphabet, padded or not),
// or, without the prefix, the key itself as raw bytes. It must not be
// empty, nor shorter than 16 bytes of key.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, SecretPrefix); ok {
		var key []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if key, err = enc.DecodeString(rest); err == nil {
				break
			}
		}
		if err != nil {
			return Secret{}, errors.New("secret: whsec_ is not followed by base64")
		}
		if len(key) < 16 {
			return Secret{}, fmt.Errorf("secret: %d bytes of key, want at least 16", len(key))
		}
		return Secret{key: key}, nil
	}
	if len(s) < 16 {
		return Secret{}, fmt.Errorf("secret: %d bytes, want at least 16", len(s))
	}
	return Secret{key: []byte(s)}, nil
}

// ParseSecrets reads one or more secrets separated by white space, the
// first being the current one: during a rotation a request is signed with
// each, and a receiver accepts either.
func ParseSecrets(s string) ([]Secret, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("secret: empty")
	}
	out := make([]Secret, 0, len(fields))
	for i, f := range fields {
		sec, err := ParseSecret(f)
		if err != nil {
			if len(fields) > 1 {
				return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(fields), err)
			}
			return nil, err
		}
		out = append(out, sec)
	}
	return out, nil
}

// Signature returns "v1," and the base64 HMAC-SHA256 of id.timestamp.body
// under secret.
func Signature(secret Secret, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret.key)
	var tsb [20]byte
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(tsb[:0], ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Sign sets the three headers of a signed request on h: id, the time of
// the attempt, and one signature per secret (space-separated).
func Sign(h http.Header, secrets []Secret, id string, at time.Time, body []byte) {
	ts := at.Unix()
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = Signature(s, id, ts, body)
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
}

// Verification errors.
var (
	ErrMissingHeaders   = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrTimestamp        = errors.New("webhook: timestamp outside the tolerance")
	ErrInvalidTimestamp = errors.New("webhook: invalid webhook-timestamp")
	ErrNoMatch          = errors.New("webhook: no matching signature")
)

// Verify checks a received request's headers and body as a receiver
// would: the timestamp within tolerance of now (DefaultTolerance if 0),
// and a v1 signature matching one of secrets (compared in constant time).
func Verify(secrets []Secret, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	for _, s := range secrets {
		want := Signature(s, id, ts, body)
		for _, got := range strings.Fields(sigs) {
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
				return nil
			}
		}
	}
	return ErrNoMatch
}
