package service

import "github.com/segmentio/kafka-go"

// This file exports what the binary's other services (`whenthen
// history`) share with this one, so that they connect to Kafka and watch
// rule files the same way.

// KafkaConnections returns the kafka-go Dialer (for a Reader) and
// Transport (for Writers and Clients) that carry o's TLS and SASL
// settings, as the service's own.
func KafkaConnections(o KafkaOptions) (*kafka.Dialer, *kafka.Transport, error) {
	c, err := newKafkaClients(o)
	if err != nil {
		return nil, nil, err
	}
	return c.dialer, c.transport, nil
}

// RulesFingerprint describes the rule files under paths (names, sizes,
// modification times): it changes when a file does, which is when the
// service reloads them.
func RulesFingerprint(paths []string) string { return fingerprint(paths) }
