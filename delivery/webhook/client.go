package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of ClientOptions.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 5 * time.Second
	DefaultResponseHeaderTimeout = 10 * time.Second
	DefaultMaxResponseBytes      = 64 << 10
	DefaultMaxConnsPerHost       = 16
	// maxRedirects bounds the same-origin 307/308 redirects followed.
	maxRedirects = 3
)

// ClientOptions configure a [Client]. Zero values take the defaults.
type ClientOptions struct {
	// DialTimeout bounds the TCP connect; default 5s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake; default 5s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response's headers once
	// the request is written; default 10s. The whole call, body included,
	// is bounded by the context passed to Do.
	ResponseHeaderTimeout time.Duration
	// MaxResponseBytes caps the response body read (the rest is dropped
	// and the connection closed); default 64 KiB.
	MaxResponseBytes int64
	// MaxConnsPerHost bounds the connections to one host (the
	// destination's concurrency); default 16.
	MaxConnsPerHost int
	// RootCAs verify the servers' certificates; nil for the system roots.
	// Verification is never turned off.
	RootCAs *x509.CertPool
	// UserAgent is sent with every request; default "whenthen".
	UserAgent string
	// NoProxy ignores HTTP_PROXY / HTTPS_PROXY / NO_PROXY; by default they
	// are honoured, as by net/http.
	NoProxy bool
}

// Client sends requests under whenthen's outbound policy. It is safe for
// concurrent use; each destination has its own.
type Client struct {
	hc      *http.Client
	maxBody int64
	ua      string
}

// NewClient returns a client with opts.
func NewClient(opts ClientOptions) *Client {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.DialTimeout, DefaultDialTimeout)
	def(&opts.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	def(&opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.MaxConnsPerHost <= 0 {
		opts.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "whenthen"
	}
	proxy := http.ProxyFromEnvironment
	if opts.NoProxy {
		proxy = nil
	}
	tr := &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs},
		TLSHandshakeTimeout:   opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          opts.MaxConnsPerHost,
		MaxIdleConnsPerHost:   opts.MaxConnsPerHost,
		MaxConnsPerHost:       opts.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Client{
		hc:      &http.Client{Transport: tr, CheckRedirect: checkRedirect},
		maxBody: opts.MaxResponseBytes,
		ua:      opts.UserAgent,
	}
}

// CloseIdleConnections closes the client's idle connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// ErrRedirect is the error of a redirect that is not followed: to another
// host (or scheme), one that would turn the POST into a GET (301, 302,
// 303), or more than three.
var ErrRedirect = errors.New("redirect not followed")

// checkRedirect follows a 307 or 308 to the same scheme and host, which
// keep the method and the body, at most maxRedirects times; anything else
// ends the call with its 3xx response (or an error for another host).
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("%w: to another host (%s)", ErrRedirect, req.URL.Host)
	}
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrRedirect, maxRedirects)
	}
	if req.Response != nil {
		if s := req.Response.StatusCode; s != http.StatusTemporaryRedirect && s != http.StatusPermanentRedirect {
			return http.ErrUseLastResponse
		}
	}
	return nil
}

// Result is what one call came to.
type Result struct {
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Body is the start of the response body, at most MaxResponseBytes.
	Body []byte
	// Err is nil for a 2xx; else the connection error, timeout, or "HTTP
	// 503". It never holds the URL (which may carry a secret).
	Err error
	// Retryable tells whether the same call may succeed later: timeouts,
	// connection errors, 408, 429 and 5xx. Other 4xx, 3xx not followed and
	// redirects to another host are permanent.
	Retryable bool
	// RetryAfter is the response's Retry-After, 0 when absent or invalid.
	RetryAfter time.Duration
	// Duration is how long the call took.
	Duration time.Duration
}

// OK reports a 2xx.
func (r *Result) OK() bool { return r.Err == nil }

// Do sends req within ctx (its deadline bounds the whole call, the body
// read included) and classifies the outcome. req's body must be
// replayable (http.NewRequestWithContext with a bytes.Reader sets GetBody)
// for a 307/308 to be followed.
func (c *Client) Do(ctx context.Context, req *http.Request) Result {
	start := time.Now()
	req = req.WithContext(ctx)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.ua)
	}
	res, err := c.hc.Do(req)
	r := Result{}
	if err != nil {
		r.Err, r.Retryable = callError(ctx, err)
		r.Duration = time.Since(start)
		return r
	}
	r.Status = res.StatusCode
	r.Body, err = io.ReadAll(io.LimitReader(res.Body, c.maxBody))
	res.Body.Close()
	r.Duration = time.Since(start)
	r.RetryAfter = ParseRetryAfter(res.Header.Get("Retry-After"), time.Now())
	switch s := res.StatusCode; {
	case s >= 200 && s < 300:
		if err != nil {
			// The status is the receiver's answer; a body cut short does
			// not change it.
			r.Body = nil
		}
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		r.Err, r.Retryable = fmt.Errorf("HTTP %d", s), true
	case s >= 300 && s < 400:
		r.Err = fmt.Errorf("HTTP %d: %w", s, ErrRedirect)
	default:
		r.Err = fmt.Errorf("HTTP %d", s)
	}
	return r
}

// callError strips the URL from a client error (url.Error quotes it, and
// a URL may hold a secret) and says whether it is worth retrying.
func callError(ctx context.Context, err error) (error, bool) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, ErrRedirect) {
		return err, false
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timeout: no complete answer within the destination's timeout"), true
	}
	if ctx.Err() != nil {
		return fmt.Errorf("cancelled: %w", ctx.Err()), true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timeout: %w", err), true
	}
	return err, true
}

// ParseRetryAfter reads a Retry-After value: seconds, or an HTTP date
// (relative to now). It returns 0 for an empty, invalid or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
