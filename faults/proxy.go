package faults

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards TCP connections from its listen address to a target,
// with faults switched on and off while it runs:
//
//   - Cut: the listener closes (new connections are refused) and every
//     open connection is reset; Restore listens again on the same address.
//   - SetLatency: every chunk forwarded, either way, arrives that much
//     later.
//   - SetReplyLoss: a chunk from the target is, with the given
//     probability, not forwarded; both connections are reset instead. The
//     request that caused it reached the target (which answered it), its
//     answer is lost: the "maybe applied" failure.
//   - CutOnReply: the next chunk from the target that matches is not
//     forwarded and the proxy is cut at once, until Restore: a request
//     applied, then the target unreachable before the client heard.
//
// A Proxy is safe for concurrent use.
type Proxy struct {
	target string
	addr   string

	mu     sync.Mutex
	ln     net.Listener // nil while cut
	links  map[*link]struct{}
	closed bool
	wg     sync.WaitGroup

	trigger  atomic.Pointer[replyTrigger]
	latency  atomic.Int64  // nanoseconds
	loss     atomic.Uint64 // math.Float64bits of the probability
	accepted atomic.Int64
	resets   atomic.Int64 // connections reset by reply loss
	lost     atomic.Int64 // replies (chunks) dropped
}

type link struct{ client, server net.Conn }

type replyTrigger struct {
	match func([]byte) bool
	fired chan struct{}
	once  sync.Once
}

// NewProxy listens on addr ("127.0.0.1:0" for a free port) and forwards
// to target.
func NewProxy(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), ln: ln, links: map[*link]struct{}{}}
	p.wg.Go(func() { p.accept(ln) })
	return p, nil
}

// Addr is the address the proxy listens on; it stays the same across Cut
// and Restore.
func (p *Proxy) Addr() string { return p.addr }

// Stats returns the connections accepted, the connections reset by reply
// loss and the replies dropped so far.
func (p *Proxy) Stats() (accepted, resets, lost int64) {
	return p.accepted.Load(), p.resets.Load(), p.lost.Load()
}

// SetLatency delays every forwarded chunk by d (0 for none).
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetReplyLoss makes each chunk from the target dropped, its connection
// reset, with probability prob (0 for none).
func (p *Proxy) SetReplyLoss(prob float64) { p.loss.Store(uint64(prob * 1e9)) }

// CutOnReply arms a one-shot fault: the next reply chunk for which match
// is true is dropped and the proxy cut (see Cut). The returned channel is
// closed when it fires.
func (p *Proxy) CutOnReply(match func([]byte) bool) <-chan struct{} {
	tr := &replyTrigger{match: match, fired: make(chan struct{})}
	p.trigger.Store(tr)
	return tr.fired
}

// Cut refuses new connections and resets the open ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	links := p.links
	p.links = map[*link]struct{}{}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for l := range links {
		l.reset()
	}
}

// Restore listens again after Cut. It retries for a few seconds if the
// port is briefly unavailable.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil || p.closed {
		return nil
	}
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.ln = ln
			p.wg.Go(func() { p.accept(ln) })
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	l := &link{client: client, server: server}
	p.mu.Lock()
	if p.ln == nil || p.closed { // cut meanwhile
		p.mu.Unlock()
		l.reset()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(server, client, false); l.reset() })
	p.pump(client, server, true)
	l.reset()
	wg.Wait()
}

// pump copies from src to dst chunk by chunk, applying the faults;
// replies says src is the target. With latency, a chunk is written that
// long after it was read, without holding up the reads that follow (the
// latency of a link, not a cap on its bandwidth).
func (p *Proxy) pump(dst, src net.Conn, replies bool) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	q := make(chan chunk, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.b); err != nil {
				_ = src.Close() // unblocks the reader
				for range q {
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	defer func() {
		close(q)
		<-done
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			if replies {
				if tr := p.trigger.Load(); tr != nil && tr.match(buf[:n]) && p.trigger.CompareAndSwap(tr, nil) {
					p.lost.Add(1)
					tr.once.Do(func() { close(tr.fired) })
					go p.Cut() // Cut waits for nothing of this goroutine's
					return
				}
				if prob := float64(p.loss.Load()) / 1e9; prob > 0 && rand.Float64() < prob {
					p.lost.Add(1)
					p.resets.Add(1)
					return
				}
			}
			q <- chunk{buf[:n], time.Now().Add(time.Duration(p.latency.Load()))}
		}
		if err != nil {
			return
		}
	}
}

// reset closes both connections with a TCP reset.
func (l *link) reset() {
	for _, c := range []net.Conn{l.client, l.server} {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}
