package service

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// KafkaClients returns what other services of the binary (`whenthen
// deliver`) connect to Kafka with, from the same settings as this one: a
// Dialer for a Reader and a Transport for Writers and Clients, both with
// o's TLS and SASL.
func KafkaClients(o KafkaOptions) (*kafka.Dialer, *kafka.Transport, error) {
	o.SASL.Mechanism = strings.ToUpper(o.SASL.Mechanism)
	c, err := newKafkaClients(o)
	if err != nil {
		return nil, nil, err
	}
	return c.dialer, c.transport, nil
}

// RedisClient returns a client of o's Redis (a rediss:// URL verified
// with o.CAFile when set), with go-redis's own log routed to log at debug
// level. It does not connect.
func RedisClient(o RedisOptions, log *slog.Logger) (*redis.Client, error) {
	ropts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", redactURLError(err))
	}
	if o.CAFile != "" {
		if ropts.TLSConfig == nil {
			return nil, fmt.Errorf("redis TLS: a CA file for a URL that is not rediss://")
		}
		pool, err := certPool(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis TLS: %w", err)
		}
		ropts.TLSConfig.RootCAs = pool
	}
	redis.SetLogger(redisLogger{log.With("component", "redis")})
	return redis.NewClient(ropts), nil
}
