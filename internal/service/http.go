package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds the checks of one /readyz request.
const readyTimeout = 2 * time.Second

// handler serves /metrics, /healthz and /readyz.
func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := s.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", shorten(err.Error(), 300))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Ready returns nil when the service can do its work: rules loaded, Kafka
// and Redis answering, no batch stuck retrying, not shutting down.
// Otherwise the error says what is wrong; /readyz serves it with a 503.
func (s *Service) Ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	if s.engine.Rules() == nil {
		return errors.New("no rules loaded")
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	redisErr := make(chan error, 1)
	go func() { redisErr <- s.store.Ping(ctx) }()
	kafkaErr := s.consumer.Ping(ctx)
	if err := <-redisErr; err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if kafkaErr != nil {
		return fmt.Errorf("kafka: %w", kafkaErr)
	}
	if err := s.pipeline.Err(); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

// shorten cuts s to at most n bytes, at a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
