// Package daemon is what whenthen's long-running services share: the
// engine service `whenthen run` (package internal/service), `whenthen
// deliver` (package delivery) and `whenthen history` (package history)
// connect to Kafka and Redis, log, and run and close the same way, from
// the same settings:
//
//   - kafka.go: [KafkaOptions] (brokers, TLS, SASL, group, topics and
//     consumer tuning), their [KafkaOptions.Validate], and [KafkaClients],
//     the kafka-go Dialer and Transport that carry TLS and SASL;
//   - redis.go: [RedisOptions], their [RedisOptions.Validate], and
//     [RedisClient], one server or a Redis Cluster (package
//     internal/redisx reads the URL);
//   - log.go: [NewLogger] and [ValidateLog], JSON or text at a level;
//   - lifecycle.go: [Lifecycle], Run once and Close any number of times.
//
// It sits below the services and imports none of them, nor the engine.
package daemon
