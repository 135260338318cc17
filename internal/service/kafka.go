package service

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// clientID names whenthen's connections in the brokers' logs and quotas.
const clientID = "whenthen"

// kafkaClients are the connection settings every Kafka client of the
// service shares: kafka-go takes TLS and SASL on a Dialer for the Reader
// and on a Transport for the Writers and the Client.
type kafkaClients struct {
	dialer    *kafka.Dialer
	transport *kafka.Transport
}

func newKafkaClients(o KafkaOptions) (*kafkaClients, error) {
	tlsCfg, err := kafkaTLS(o.TLS)
	if err != nil {
		return nil, err
	}
	mech, err := saslMechanism(o.SASL)
	if err != nil {
		return nil, err
	}
	return &kafkaClients{
		dialer: &kafka.Dialer{
			ClientID:      clientID,
			Timeout:       10 * time.Second,
			DualStack:     true,
			TLS:           tlsCfg,
			SASLMechanism: mech,
		},
		transport: &kafka.Transport{
			ClientID:    clientID,
			DialTimeout: 10 * time.Second,
			MetadataTTL: o.MetadataTTL,
			TLS:         tlsCfg,
			SASL:        mech,
		},
	}, nil
}

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
// name is already upper case.
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
