package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/whenthen/whenthen/actions/writer"
)

func init() {
	register(&command{name: "broker", summary: "run a local in-memory Kafka-protocol broker with the default topics", run: runBroker})
}

// defaultEventsTopic is the input topic of docs/events.md.
const defaultEventsTopic = "crm.events"

// defaultBrokerListen is where `whenthen broker` listens by default.
const defaultBrokerListen = "127.0.0.1:9092"

// brokerTopics are the topics the local broker creates: the input topic and
// the three output topics.
func brokerTopics() []string {
	ts := []string{defaultEventsTopic}
	for _, t := range writer.DefaultTopics(0, 0) {
		ts = append(ts, t.Name)
	}
	return ts
}

// startBroker starts a one-broker kfake cluster listening on listen
// (host:port; port 0 picks a free one) whose default topics have partitions
// partitions each. Topics a client asks for are created on the fly with the
// same number of partitions. The caller closes the cluster.
func startBroker(listen string, partitions int) (*kfake.Cluster, error) {
	if partitions < 1 {
		return nil, fmt.Errorf("partitions must be at least 1, got %d", partitions)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return nil, fmt.Errorf("listen address %q: %w", listen, err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(int32(partitions), brokerTopics()...),
		// kfake would listen on 127.0.0.1 with a random port; listen where
		// we were told instead. It advertises the listener's address.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, listen)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	return c, nil
}

func runBroker(ctx context.Context, env *cmdEnv, args []string) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	listen := fs.String("listen", defaultBrokerListen, "`ADDR` (host:port) to listen on; port 0 picks a free port")
	partitions := fs.Int("partitions", 1, "partitions of each default topic, and of topics created on the fly")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: whenthen broker [--listen ADDR] [--partitions N]")
		fmt.Fprintln(env.stderr, "\nAn in-memory Kafka-protocol broker (kfake) for development and tests, with the")
		fmt.Fprintf(env.stderr, "topics %v. Everything is lost when it stops (Ctrl-C).\n\n", brokerTopics())
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, env, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fs.Usage()
		return 2
	}
	if *partitions < 1 {
		fmt.Fprintf(env.stderr, "whenthen broker: --partitions must be at least 1, got %d\n", *partitions)
		return 2
	}
	c, err := startBroker(*listen, *partitions)
	if err != nil {
		var addrErr *net.AddrError
		if errors.As(err, &addrErr) {
			fmt.Fprintf(env.stderr, "whenthen broker: --listen: %v\n", err)
			return 2
		}
		fmt.Fprintf(env.stderr, "whenthen broker: %v\n", err)
		return 1
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	fmt.Fprintf(env.stdout, "whenthen broker: listening on %s\n", addr)
	fmt.Fprintf(env.stdout, "topics (%d partition(s) each): %v\n", *partitions, brokerTopics())
	fmt.Fprintf(env.stdout, "try: kcat -b %s -L\n", addr)
	<-ctx.Done()
	fmt.Fprintln(env.stdout, "whenthen broker: stopping")
	return 0
}
