package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/internal/redisx"
)

// DefaultRedisURL is the Redis a service uses when none is given.
const DefaultRedisURL = "redis://localhost:6379/0"

// RedisOptions are the Redis settings of a service.
type RedisOptions struct {
	// URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS
	// (with ?skip_verify=true to skip certificate verification, for
	// tests); a Redis Cluster is
	// redis+cluster://[[user]:password@]host:port[,host:port...] (or
	// rediss+cluster://, or redis:// with several hosts): the seeds the
	// client learns the cluster from (redisx.ParseURL); default
	// "redis://localhost:6379/0".
	URL string
	// CAFile holds PEM certificates that verify the server of a rediss://
	// URL; "" for the system roots.
	CAFile string
	// Prefix namespaces every key; default "wt:".
	Prefix string
}

// Validate checks the URL ("" is the default's) and that a CA file comes
// with a TLS URL; its errors never quote the URL (it may hold a password).
func (o RedisOptions) Validate() error {
	if o.URL == "" {
		return nil
	}
	ro, err := redisx.ParseURL(o.URL)
	switch {
	case err != nil:
		return fmt.Errorf("redis URL: %w", err)
	case o.CAFile != "" && ro.TLSConfig() == nil:
		return errors.New("redis CA file given for a URL that is not rediss:// or rediss+cluster://")
	}
	return nil
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

// redisLogger routes go-redis's internal log to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
	}
}
