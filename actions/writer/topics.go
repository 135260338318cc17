package writer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
)

// TopicSpec describes a topic for [EnsureTopics].
type TopicSpec struct {
	Name              string            // required
	Partitions        int               // default 1
	ReplicationFactor int               // default 1
	Configs           map[string]string // topic configs, such as retention.ms; nil for none
}

// DefaultTopics returns the specs of the four output topics (actions, runs,
// dead letters, delivery outcomes) with the given number of partitions and
// replication factor (0 for the defaults of [TopicSpec]).
func DefaultTopics(partitions, replicationFactor int) []TopicSpec {
	return []TopicSpec{
		{Name: actions.DefaultActionsTopic, Partitions: partitions, ReplicationFactor: replicationFactor},
		{Name: actions.DefaultRunsTopic, Partitions: partitions, ReplicationFactor: replicationFactor},
		{Name: actions.DefaultDLQTopic, Partitions: partitions, ReplicationFactor: replicationFactor},
		{Name: actions.DefaultOutcomesTopic, Partitions: partitions, ReplicationFactor: replicationFactor},
	}
}

// EnsureTopics creates those of topics that do not exist yet, through the
// cluster's controller; a topic that exists already is left as it is, even if
// its partitions or configs differ from the spec. dialer carries TLS and
// SASL settings; nil means a plain dialer with a 10s timeout. The first of
// brokers that answers is asked for the controller. ctx bounds the whole
// call.
//
// It is meant for development and tests: production topics are provisioned
// by their operators.
func EnsureTopics(ctx context.Context, brokers []string, dialer *kafka.Dialer, topics []TopicSpec) error {
	if len(brokers) == 0 {
		return errors.New("writer: ensure topics: no brokers")
	}
	if len(topics) == 0 {
		return nil
	}
	configs := make([]kafka.TopicConfig, 0, len(topics))
	for _, t := range topics {
		if t.Name == "" {
			return errors.New("writer: ensure topics: topic without a name")
		}
		if t.Partitions < 0 || t.ReplicationFactor < 0 {
			return fmt.Errorf("writer: ensure topics: %s: negative partitions or replication factor", t.Name)
		}
		tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: max(t.Partitions, 1), ReplicationFactor: max(t.ReplicationFactor, 1)}
		for k, v := range t.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		configs = append(configs, tc)
	}
	if dialer == nil {
		dialer = &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	}

	conn, err := dialAny(ctx, dialer, brokers)
	if err != nil {
		return fmt.Errorf("writer: ensure topics: %w", err)
	}
	controller, err := withDeadline(ctx, conn, conn.Controller)
	conn.Close()
	if err != nil {
		return fmt.Errorf("writer: ensure topics: find controller: %w", err)
	}
	addr := net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port))
	cc, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("writer: ensure topics: dial controller %s: %w", addr, err)
	}
	defer cc.Close()
	_, err = withDeadline(ctx, cc, func() (struct{}, error) { return struct{}{}, cc.CreateTopics(configs...) })
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("writer: ensure topics: create: %w", err)
	}
	return nil
}

// dialAny returns a connection to the first of brokers that accepts one.
func dialAny(ctx context.Context, dialer *kafka.Dialer, brokers []string) (*kafka.Conn, error) {
	var errs []error
	for _, b := range brokers {
		conn, err := dialer.DialContext(ctx, "tcp", b)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dial brokers: %w", errors.Join(errs...))
}

// withDeadline runs f, a blocking call on conn, within ctx: the connection
// gets ctx's deadline, and is closed, failing f, if ctx is cancelled first.
func withDeadline[T any](ctx context.Context, conn *kafka.Conn, f func() (T, error)) (T, error) {
	if d, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(d); err != nil {
			var zero T
			return zero, err
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	v, err := f()
	if err != nil && ctx.Err() != nil {
		return v, fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return v, err
}
