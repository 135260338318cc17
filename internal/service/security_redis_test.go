package service_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/childproc"
	"github.com/whenthen/whenthen/internal/service"
	"github.com/whenthen/whenthen/internal/testenv"
)

// redisACL is the ACL docs/operations.md tells operators to give
// whenthen: its key prefix and the commands it uses, nothing else.
const redisACL = "whenthen on >s3cret-pass ~wt:* resetchannels -@all +get +set +del +exists +zadd +zrem +zrangebyscore +zscore +sadd +srem +sscan +hget +hset +hsetnx +hdel +evalsha +script|load +ping +hello"

// TestRedisACLAndTLS runs the service against a redis-server that
// listens on TLS only, with the default user off and whenthen's ACL user
// as documented: actions are claimed and confirmed, and a date timer is
// armed and fired, with nothing but those commands. A wrong password
// leaves the service unready with Redis's own error, and no password
// appears in the log.
func TestRedisACLAndTLS(t *testing.T) {
	if out, err := exec.Command("redis-server", "--version").Output(); err != nil {
		t.Skipf("redis-server: %v", err)
	} else if !strings.Contains(string(out), "v=") {
		t.Skipf("redis-server --version: %s", out)
	}
	dir := t.TempDir()
	ca, cert, key := redisCerts(t, dir)
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	acl := writeFile(t, dir, "users.acl", "user default off\nuser "+redisACL+"\n")
	testenv.StartRedis(t, "--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no",
		"--aclfile", acl)
	rediss := func(pass string) string {
		return fmt.Sprintf("rediss://whenthen:%s@127.0.0.1:%d/0", pass, port)
	}

	c := newCluster(t, 1)
	rulesDir := t.TempDir()
	writeFile(t, rulesDir, "r.yaml", bigDeal+`
  - id: renewal
    when:
      date: {record: account, field: renewal_date, offset: -1h}
    then:
      flow: {id: renewal, who: record.primary_contact_id}
`)
	var logs testenv.Buffer
	o := options(t, c, rulesDir, rediss("s3cret-pass"))
	o.Redis.CAFile = ca
	o.Logger, o.LogOutput, o.LogFormat, o.LogLevel = nil, &logs, "json", "debug"
	s, _ := start(t, o)
	testenv.WaitFor(t, 20*time.Second, "ready over TLS with the ACL user", func() bool { code, _ := get(t, "http://"+s.MetricsAddr()+"/readyz"); return code == 200 })
	renewal := time.Now().Add(time.Hour + 2*time.Second).UTC().Format(time.RFC3339Nano)
	c.Produce(t, inputTopic, oppEvent(1, 5000),
		event("A1", `{"id":"evt-a1","type":"record.created","time":"2026-11-24T10:00:00Z","object":"account",`+
			`"record":{"id":"A1","renewal_date":"`+renewal+`","primary_contact_id":"c9"}}`))
	testenv.WaitFor(t, 30*time.Second, "the event's action and the timer's", func() bool { return c.Count(actions.DefaultActionsTopic) == 2 })

	// A wrong password: unready, with Redis's answer.
	bad := options(t, c, rulesDir, rediss("not-the-password"))
	bad.Redis.CAFile = ca
	bad.Kafka.Group = "other-group"
	bad.ShutdownTimeout = time.Second
	bad.Logger, bad.LogOutput, bad.LogFormat, bad.LogLevel = nil, &logs, "json", "debug"
	b, _ := start(t, bad)
	var body string
	testenv.WaitFor(t, 20*time.Second, "a Redis error on /readyz", func() bool {
		var code int
		code, body = get(t, "http://"+b.MetricsAddr()+"/readyz")
		return code == 503 && strings.Contains(body, "redis")
	})
	if !strings.Contains(body, "WRONGPASS") {
		t.Errorf("/readyz with a wrong password: %q, want Redis's WRONGPASS", body)
	}
	for _, secret := range []string{"s3cret-pass", "not-the-password"} {
		if strings.Contains(logs.String(), secret) || strings.Contains(body, secret) {
			t.Errorf("the password %q appears in the log or /readyz", secret)
		}
	}
	// The plain protocol on the TLS port, and TLS without the CA, fail too.
	for name, edit := range map[string]func(*service.Options){
		"plain": func(o *service.Options) {
			o.Redis.URL = strings.Replace(o.Redis.URL, "rediss://", "redis://", 1)
			o.Redis.CAFile = ""
		},
		"no CA":   func(o *service.Options) { o.Redis.CAFile = "" },
		"no user": func(o *service.Options) { o.Redis.URL = fmt.Sprintf("rediss://127.0.0.1:%d/0", port) },
	} {
		o := options(t, c, rulesDir, rediss("s3cret-pass"))
		o.Redis.CAFile = ca
		o.Kafka.Group = "group-" + strings.ReplaceAll(name, " ", "-")
		o.ShutdownTimeout = time.Second
		edit(&o)
		s, stop := start(t, o)
		testenv.WaitFor(t, 20*time.Second, name+": unready", func() bool { code, _ := get(t, "http://"+s.MetricsAddr()+"/readyz"); return code == 503 })
		_, body := get(t, "http://"+s.MetricsAddr()+"/readyz")
		t.Logf("%s: %s", name, strings.TrimSpace(body))
		stop()
	}
}

// redisCerts writes a CA and a server certificate for 127.0.0.1 (PEM)
// into dir and returns the CA, certificate and key paths.
func redisCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "whenthen redis test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}
