package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/engine/store"
	"github.com/whenthen/whenthen/internal/redisx"
	"github.com/whenthen/whenthen/internal/service"
	"github.com/whenthen/whenthen/internal/syncx"
	"github.com/whenthen/whenthen/rules"
)

// devTicker carries out the "#! tick ID" directives of the dev stream: it
// rewinds a built-in schedule in the service's Redis to just before its
// latest tick, once the service has processed the stream so far.
type devTicker struct {
	rdb redis.UniversalClient
	st  *store.Redis
	svc *service.Service
	set *rules.Set
	out *lockedWriter
}

func newDevTicker(url, prefix string, svc *service.Service, set *rules.Set, out *lockedWriter) (*devTicker, error) {
	rdb, err := redisx.NewClient(url)
	if err != nil {
		return nil, err
	}
	st, err := store.NewRedis(rdb, prefix, store.Options{Schema: svc.Schema()})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return &devTicker{rdb: rdb, st: st, svc: svc, set: set, out: out}, nil
}

func (d *devTicker) Close() { d.rdb.Close() }

// rewind waits until the service has processed the sent messages, then
// rewinds schedule id to just before its latest tick.
func (d *devTicker) rewind(ctx context.Context, id string, sent int) error {
	deadline := time.Now().Add(30 * time.Second)
	for processed(d.svc.Gatherer()) < float64(sent) {
		if time.Now().After(deadline) {
			return fmt.Errorf("#! tick %s: the service did not process the %d messages sent before it within 30s", id, sent)
		}
		if !syncx.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	a, _ := d.set.Automation(id)
	c := a.Trigger.Cron
	now := time.Now()
	last := c.Latest(time.Time{}, now)
	if err := d.st.SetWalkMark(ctx, engine.ScheduleWalk(a), strconv.FormatInt(last.UnixMilli()-1, 10)); err != nil {
		return fmt.Errorf("#! tick %s: %w", id, err)
	}
	d.out.printf("%s TICK   %s: as if its tick of %s (%s, %s) was missed; it runs now, late\n", clock(now), id,
		last.In(c.Location).Format("Mon Jan 2 15:04"), c.Spec, c.Location)
	return nil
}

// processed is how many input messages the service has processed to the
// end (state committed, offset committed): on dev's fresh topic, the sum
// of its partitions' committed offsets.
func processed(g prometheus.Gatherer) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "whenthen_consumer_committed_offset" {
			for _, m := range mf.GetMetric() {
				n += m.GetGauge().GetValue()
			}
		}
	}
	return n
}
