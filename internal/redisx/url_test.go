package redisx_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/internal/redisx"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		// want is "single ADDR DB", or "cluster ADDRS" (comma-separated);
		// then " tls", " sni=NAME" (a TLS server name fixed for every
		// connection: a cluster's nodes verify each as itself) and
		// " user=U" when set.
		want, err string
	}{
		{name: "one server", url: "redis://127.0.0.1:6379/2", want: "single 127.0.0.1:6379 db=2"},
		{name: "one server, TLS, user", url: "rediss://u:secret@redis:6380/0", want: "single redis:6380 db=0 tls sni=redis user=u"},
		{name: "cluster", url: "redis+cluster://a:7000,b:7001,c:7002", want: "cluster a:7000,b:7001,c:7002"},
		{name: "cluster, TLS, options", url: "rediss+cluster://u:secret@a:7000,b:7001/?dial_timeout=3s", want: "cluster a:7000,b:7001 tls user=u dial=3s"},
		{name: "cluster of one seed", url: "redis+cluster://a:7000/0", want: "cluster a:7000"},
		{name: "a list of seeds", url: "redis://a:7000,b:7001/", want: "cluster a:7000,b:7001"},
		{name: "cluster database", url: "redis+cluster://a:7000,b:7001/3", err: "a cluster has only database 0"},
		{name: "scheme", url: "http://a:7000", err: `scheme "http"`},
		{name: "empty seed", url: "redis+cluster://u:secret@a:7000,", err: "no host"},
		{name: "bad option", url: "redis+cluster://u:secret@a:7000?nosuch=1", err: "nosuch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := redisx.ParseURL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the error holds the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if o.Cluster != nil {
				got = "cluster " + strings.Join(o.Cluster.Addrs, ",")
				if o.Cluster.ClusterStateReloadInterval != redisx.ClusterReloadInterval {
					t.Errorf("reload interval %s", o.Cluster.ClusterStateReloadInterval)
				}
			} else {
				got = "single " + o.Single.Addr + " db=" + itoa(o.Single.DB)
			}
			if tc := o.TLSConfig(); tc != nil {
				got += " tls"
				if tc.ServerName != "" {
					got += " sni=" + tc.ServerName
				}
			}
			user, dial := "", time.Duration(0)
			if o.Cluster != nil {
				user, dial = o.Cluster.Username, o.Cluster.DialTimeout
			} else {
				user = o.Single.Username
			}
			if user != "" {
				got += " user=" + user
			}
			if dial != 0 {
				got += " dial=" + dial.String()
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			o.NewClient().Close()
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
