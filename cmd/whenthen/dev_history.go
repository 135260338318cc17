package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/actions/writer"
	"github.com/whenthen/whenthen/history"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/internal/daemon"
)

// devHistory is the run history `whenthen dev` starts beside the engine:
// the same broker, the same Redis (for the Why not? check), the same
// rules, an embedded store in a temporary directory removed at exit, and
// one token, printed as a sign-in URL.
type devHistory struct {
	listen string
	off    bool

	svc   *history.Service
	dir   string
	token string
	done  chan error
	stop  context.CancelFunc
}

func (h *devHistory) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.listen, "history-listen", "127.0.0.1:0", "`ADDR` of the history page and API; port 0 picks a free one")
	fs.BoolVar(&h.off, "no-history", false, "do not start the run history")
}

// start starts the history service; close stops it and removes its store.
func (h *devHistory) start(ctx context.Context, brokers []string, redisURL, prefix string, rules []string, schema string, log *slog.Logger) error {
	if h.off {
		return nil
	}
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The broker seeds the engine's topics; deliver's is created here.
	if err := writer.EnsureTopics(ectx, brokers, nil, []writer.TopicSpec{{Name: actions.DefaultOutcomesTopic}}); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "whenthen-dev-history-")
	if err != nil {
		return err
	}
	h.dir = dir
	tok, hash := auth.NewToken()
	h.token = tok
	h.svc, err = history.New(history.Options{
		Kafka: daemon.KafkaOptions{Brokers: brokers, Group: "whenthen-dev-history",
			MaxWait: 100 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond, CommitInterval: 100 * time.Millisecond},
		DB:    "sqlite:" + filepath.Join(dir, "history.db"),
		Rules: rules, Schema: schema,
		Redis:  daemon.RedisOptions{URL: redisURL, Prefix: prefix},
		Listen: h.listen,
		Tokens: []auth.Token{{Name: "dev", SHA256: hash, Workspaces: []string{auth.AllWorkspaces}}},
		Logger: log.With("service", "history"), ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	h.stop, h.done = stop, make(chan error, 1)
	go func() { h.done <- h.svc.Run(rctx) }()
	return nil
}

// banner prints where the history is and how to sign in.
func (h *devHistory) banner(out *lockedWriter) {
	if h.svc == nil {
		return
	}
	u := "http://" + h.svc.Addr()
	out.printf("  history   %s/  (runs, actions, outcomes in %s; API %s/api/v1)\n", u, filepath.Join(h.dir, "history.db"), u)
	out.printf("  sign in   %s/signin#token=%s\n", u, h.token)
}

// close stops the service and removes its store.
func (h *devHistory) close(stderr interface{ Write([]byte) (int, error) }) {
	if h.svc == nil {
		return
	}
	h.stop()
	select {
	case err := <-h.done:
		if err != nil {
			fmt.Fprintf(stderr, "whenthen dev: history: %v\n", err)
		}
	case <-time.After(15 * time.Second):
		fmt.Fprintln(stderr, "whenthen dev: the history did not stop within 15s; leaving it")
	}
	_ = h.svc.Close()
	os.RemoveAll(h.dir)
}
