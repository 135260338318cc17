package service_test

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestKafkaWrongCredentials fills the gap TestKafkaTLSAndSCRAM leaves:
// against a broker that requires TLS and SCRAM-SHA-512, a wrong password,
// a wrong mechanism and a missing CA each leave the service unready with
// the Kafka error, and no password reaches /readyz or the log. (kfake
// closes the connection on a failed SASL exchange, so the first two read
// "unexpected EOF"; a real broker answers SASL_AUTHENTICATION_FAILED,
// which kafka-go reports as "SASL Authentication failed".)
func TestKafkaWrongCredentials(t *testing.T) {
	const user, pass = "whenthen", "s3cret-kafka"
	caPEM, serverCert := testCerts(t)
	dir := t.TempDir()
	writeFile(t, dir, "ca.pem", string(caPEM))
	kc, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(1, inputTopic, actions.DefaultActionsTopic, actions.DefaultRunsTopic, actions.DefaultDLQTopic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", user, pass),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c := &testenv.Cluster{Cluster: kc}
	rulesDir := t.TempDir()
	writeFile(t, rulesDir, "r.yaml", bigDeal)
	for _, tc := range []struct {
		name, mech, user, pass, ca, want string
	}{
		{"wrong password", "SCRAM-SHA-512", user, "not-the-password", filepath.Join(dir, "ca.pem"), "kafka: "},
		{"wrong mechanism", "SCRAM-SHA-256", user, pass, filepath.Join(dir, "ca.pem"), "kafka: "},
		{"no CA", "SCRAM-SHA-512", user, pass, "", "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testenv.Buffer
			o := options(t, c, rulesDir, "")
			o.Kafka.TLS.CAFile = tc.ca
			o.Kafka.TLS.Enabled = true
			o.Kafka.SASL.Mechanism, o.Kafka.SASL.Username, o.Kafka.SASL.Password = tc.mech, tc.user, tc.pass
			o.Logger, o.LogOutput, o.LogFormat, o.LogLevel = nil, &logs, "json", "debug"
			o.ShutdownTimeout = time.Second
			s, stop := start(t, o)
			var body string
			testenv.WaitFor(t, 20*time.Second, "a Kafka error on /readyz", func() bool {
				var code int
				code, body = get(t, "http://"+s.MetricsAddr()+"/readyz")
				return code == 503 && strings.Contains(body, "kafka")
			})
			if !strings.Contains(body, tc.want) {
				t.Errorf("/readyz %q, want it to say %q", body, tc.want)
			}
			t.Logf("/readyz: %s", strings.TrimSpace(body))
			stop()
			for _, secret := range []string{pass, "not-the-password"} {
				if strings.Contains(logs.String(), secret) || strings.Contains(body, secret) {
					t.Errorf("the password %q appears in the log or /readyz", secret)
				}
			}
		})
	}
}
