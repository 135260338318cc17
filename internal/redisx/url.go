package redisx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterReloadInterval is how often a cluster client reloads the slot
// map while it sends commands. go-redis reloads it on MOVED and ASK, but
// a failover gives neither (the dead master does not answer), and its
// default interval, 60 s, would leave the dead master's slots failing
// that long.
const ClusterReloadInterval = time.Second

// Options are the client options a Redis URL names: one server (Single)
// or a Redis Cluster (Cluster), one of them set.
type Options struct {
	Single  *redis.Options
	Cluster *redis.ClusterOptions
}

// ParseURL reads a Redis URL:
//
//	redis://[USER:PASSWORD@]HOST:PORT[/DB][?OPTIONS]          one server
//	rediss://...                                              one server, TLS
//	redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/][?OPTIONS]   a cluster, from these seeds
//	rediss+cluster://...                                      a cluster, TLS
//
// A redis:// or rediss:// URL with several comma-separated hosts names a
// cluster too. OPTIONS are go-redis's (redis.ParseURL, for a cluster
// redis.ParseClusterURL: dial_timeout=3s, pool_size=20, ...). A cluster
// has only database 0. Errors never hold the URL (it may hold a
// password).
func ParseURL(raw string) (*Options, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("not a URL: want redis://, rediss://, redis+cluster:// or rediss+cluster://")
	}
	base, cluster := strings.CutSuffix(scheme, "+cluster")
	if base != "redis" && base != "rediss" {
		return nil, fmt.Errorf("scheme %q, want redis, rediss, redis+cluster or rediss+cluster", scheme)
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hosts := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	seeds := strings.Split(hosts, ",")
	for _, h := range seeds {
		if h == "" {
			return nil, errors.New("no host")
		}
	}
	if !cluster && len(seeds) == 1 {
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, redact(err)
		}
		return &Options{Single: o}, nil
	}
	path, query, _ := strings.Cut(tail, "?")
	if db := strings.TrimPrefix(path, "/"); db != "" && db != "0" {
		return nil, fmt.Errorf("database %q: a cluster has only database 0", db)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, redact(err)
	}
	for _, s := range seeds[1:] {
		q.Add("addr", s)
	}
	o, err := redis.ParseClusterURL(base + "://" + userinfo + seeds[0] + "?" + q.Encode())
	if err != nil {
		return nil, redact(err)
	}
	if o.ClusterStateReloadInterval == 0 {
		o.ClusterStateReloadInterval = ClusterReloadInterval
	}
	if o.TLSConfig != nil {
		// go-redis names the first seed as every node's TLS server; with
		// none, each connection verifies the host it dials (crypto/tls
		// takes it from the address), as a node's own certificate says.
		o.TLSConfig.ServerName = ""
	}
	return &Options{Cluster: o}, nil
}

// TLSConfig is the TLS configuration of the client (nil: no TLS).
func (o *Options) TLSConfig() *tls.Config {
	if o.Cluster != nil {
		return o.Cluster.TLSConfig
	}
	return o.Single.TLSConfig
}

// NewClient returns a client of the options: a *redis.ClusterClient for a
// cluster, a *redis.Client otherwise. It does not connect.
func (o *Options) NewClient() redis.UniversalClient {
	if o.Cluster != nil {
		return redis.NewClusterClient(o.Cluster)
	}
	return redis.NewClient(o.Single)
}

// NewClient returns a client of the Redis the URL names (ParseURL).
func NewClient(raw string) (redis.UniversalClient, error) {
	o, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return o.NewClient(), nil
}

// redact drops the URL (it may hold a password) from a url.Error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
