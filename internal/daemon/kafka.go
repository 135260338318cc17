package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// KafkaOptions are the Kafka settings of a service: the brokers and how to
// reach them (TLS, SASL), shared by all three; the group, topics and
// consumer tuning, each service reading those it uses and defaulting them
// itself.
type KafkaOptions struct {
	// Brokers are the bootstrap brokers, host:port (required).
	Brokers []string
	// Group is the consumer group; each service has its own default
	// ("whenthen" for run, "whenthen-deliver", "whenthen-history").
	Group string
	// Topics, each service reading those it uses; their defaults are the
	// topics of docs/events.md and docs/outputs.md (crm.events,
	// automations.actions, automations.runs, automations.dlq).
	InputTopic   string
	ActionsTopic string
	RunsTopic    string
	DLQTopic     string

	TLS  TLSOptions
	SASL SASLOptions

	// Consumer tuning; zero values take the defaults of package
	// ingest/consumer. Tests shorten them.
	MaxWait           time.Duration
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	CommitInterval    time.Duration
	LagInterval       time.Duration
	// MetadataTTL is how often the writers' and offset requests' view of
	// the cluster is refreshed; default 6s (kafka-go's).
	MetadataTTL time.Duration
}

// TLSOptions enable TLS to the brokers.
type TLSOptions struct {
	// Enabled turns TLS on; setting any file below does too.
	Enabled bool
	// CAFile holds the PEM certificates that verify the brokers; "" for
	// the system roots.
	CAFile string
	// CertFile and KeyFile hold a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate; both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name verified in the brokers' certificates.
	ServerName string
	// InsecureSkipVerify disables verification of the brokers'
	// certificates: for tests only.
	InsecureSkipVerify bool
}

func (t TLSOptions) on() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLOptions authenticate to the brokers.
type SASLOptions struct {
	// Mechanism is "" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, in
	// any case.
	Mechanism string
	Username  string
	Password  string
}

// Validate reports every invalid setting the services share: brokers,
// TLS, SASL and durations (a negative LagInterval turns the lag gauge
// off). Each service checks its own topics.
func (o KafkaOptions) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(o.Brokers) == 0 {
		bad("no Kafka brokers")
	}
	for _, b := range o.Brokers {
		if b == "" || strings.ContainsAny(b, " /") || !strings.Contains(b, ":") {
			bad("Kafka broker %q: want host:port", b)
		}
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		bad("Kafka TLS: set both the client certificate and key files, or neither")
	}
	switch strings.ToUpper(o.SASL.Mechanism) {
	case "":
		if o.SASL.Username != "" || o.SASL.Password != "" {
			bad("Kafka SASL: a username or password without a mechanism")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if o.SASL.Username == "" {
			bad("Kafka SASL %s: no username", strings.ToUpper(o.SASL.Mechanism))
		}
	default:
		bad("Kafka SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", o.SASL.Mechanism)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Kafka max wait", o.MaxWait}, {"Kafka heartbeat interval", o.HeartbeatInterval},
		{"Kafka session timeout", o.SessionTimeout}, {"Kafka rebalance timeout", o.RebalanceTimeout},
		{"Kafka commit interval", o.CommitInterval},
		{"Kafka metadata TTL", o.MetadataTTL},
	} {
		if d.v < 0 {
			bad("negative %s %v", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}

// KafkaClients returns what a service connects to Kafka with: a Dialer
// for a Reader and a Transport for Writers and Clients, both with o's TLS
// and SASL (the mechanism in any case).
func KafkaClients(o KafkaOptions) (*kafka.Dialer, *kafka.Transport, error) {
	o.SASL.Mechanism = strings.ToUpper(o.SASL.Mechanism)
	tlsCfg, err := kafkaTLS(o.TLS)
	if err != nil {
		return nil, nil, err
	}
	mech, err := saslMechanism(o.SASL)
	if err != nil {
		return nil, nil, err
	}
	dialer := &kafka.Dialer{
		ClientID:      clientID,
		Timeout:       10 * time.Second,
		DualStack:     true,
		TLS:           tlsCfg,
		SASLMechanism: mech,
	}
	transport := &kafka.Transport{
		ClientID:    clientID,
		DialTimeout: 10 * time.Second,
		MetadataTTL: o.MetadataTTL,
		TLS:         tlsCfg,
		SASL:        mech,
	}
	return dialer, transport, nil
}

// clientID names whenthen's connections in the brokers' logs and quotas.
const clientID = "whenthen"

// kafkaTLS returns the TLS configuration, nil when TLS is off.
func kafkaTLS(o TLSOptions) (*tls.Config, error) {
	if !o.on() {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // an explicit option, documented as for tests
	}
	if o.CAFile != "" {
		pool, err := certPool(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS: %w", err)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// certPool reads PEM certificates from path.
func certPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// saslMechanism returns the SASL mechanism, nil for none. The mechanism
// name is already upper case (KafkaClients).
func saslMechanism(o SASLOptions) (sasl.Mechanism, error) {
	switch o.Mechanism {
	case "":
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: o.Username, Password: o.Password}, nil
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if o.Mechanism == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, o.Username, o.Password)
		if err != nil {
			return nil, fmt.Errorf("kafka SASL %s: %w", o.Mechanism, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("kafka SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", o.Mechanism)
}
