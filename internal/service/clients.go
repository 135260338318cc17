package service

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/internal/redisx"
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

// RedisClient returns a client of o's Redis (a TLS URL verified with
// o.CAFile when set): a *redis.ClusterClient for a cluster URL
// (redisx.ParseURL), a *redis.Client otherwise, with go-redis's own log
// routed to log at debug level. It does not connect.
func RedisClient(o RedisOptions, log *slog.Logger) (redis.UniversalClient, error) {
	ropts, err := redisx.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	if o.CAFile != "" {
		tc := ropts.TLSConfig()
		if tc == nil {
			return nil, fmt.Errorf("redis TLS: a CA file for a URL that is not rediss:// or rediss+cluster://")
		}
		pool, err := certPool(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis TLS: %w", err)
		}
		tc.RootCAs = pool
	}
	// go-redis logs connection failures with the standard logger, which
	// would break a JSON log; the failures that matter surface through
	// the pipeline and /readyz, so its lines go to debug. The logger is
	// process-wide: the last client built owns it.
	redis.SetLogger(redisLogger{log.With("component", "redis")})
	return ropts.NewClient(), nil
}
