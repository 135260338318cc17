package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestKafkaTLSAndSCRAM runs the service against a broker that requires
// TLS and SASL SCRAM-SHA-512: the reader (Dialer), the writers and the
// offset requests (Transport) must all authenticate.
func TestKafkaTLSAndSCRAM(t *testing.T) {
	const user, pass = "whenthen", "s3cret"
	caPEM, serverCert := testCerts(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, dir, "ca.pem", string(caPEM))
	kc, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(1, inputTopic, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", user, pass),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c := &testenv.Cluster{Cluster: kc}

	rulesDir := t.TempDir()
	writeFile(t, rulesDir, "r.yaml", bigDeal)
	o := options(t, c, rulesDir, "")
	o.Kafka.TLS.CAFile = caFile
	o.Kafka.SASL.Mechanism = "scram-sha-512"
	o.Kafka.SASL.Username, o.Kafka.SASL.Password = user, pass
	s, _ := start(t, o)

	// The test's own clients authenticate the same way.
	mech, err := scram.Mechanism(scram.SHA512, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	transport := &kafka.Transport{TLS: tlsCfg, SASL: mech}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(c.Addrs()...), Topic: inputTopic, Transport: transport,
		BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, oppEvent(1, 5000), oppEvent(2, 5000)); err != nil {
		t.Fatalf("produce: %v", err)
	}
	testenv.WaitFor(t, 20*time.Second, "both events committed", func() bool { return allCommitted(c) })
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Addrs(), Topic: actions.DefaultActionsTopic, MaxWait: 50 * time.Millisecond,
		Dialer: &kafka.Dialer{Timeout: 5 * time.Second, TLS: tlsCfg, SASLMechanism: mech}})
	defer r.Close()
	got := map[string]bool{}
	for range 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read actions: %v", err)
		}
		got[string(m.Key)] = true
	}
	if !got["opp-1"] || !got["opp-2"] {
		t.Errorf("actions for %v, want opp-1 and opp-2", got)
	}
	if code, body := get(t, "http://"+s.MetricsAddr()+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
}

// testCerts returns a CA certificate (PEM) and a server certificate for
// 127.0.0.1 signed by it.
func testCerts(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "whenthen test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), cert
}
