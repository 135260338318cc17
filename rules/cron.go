package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MinCronInterval is the shortest interval of a built-in schedule: each
// tick walks every known record of its object.
const MinCronInterval = time.Minute

// Cron is a built-in schedule's cron expression, in its time zone.
type Cron struct {
	// Spec is the expression as written: five fields (minute hour
	// day-of-month month day-of-week), or @hourly, @daily, @weekly,
	// @monthly, @yearly, @every DURATION.
	Spec     string
	Location *time.Location
	sched    cron.Schedule
}

// ParseCron parses a cron expression (the standard five fields or a
// descriptor) for the time zone loc, with robfig/cron.
func ParseCron(spec string, loc *time.Location) (*Cron, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return nil, errors.New("empty cron expression")
	}
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return nil, errors.New("put the time zone in when.schedule.timezone, not in the expression")
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("invalid expression (%s); want five fields (minute hour day-of-month month day-of-week, as 0 9 * * MON) or @hourly, @daily, @weekly, @monthly, @yearly, @every DURATION", err)
	}
	c := &Cron{Spec: spec, Location: loc, sched: sched}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok && every.Delay < MinCronInterval {
		return nil, errors.New("a built-in schedule ticks at most once a minute")
	}
	// Reject expressions that never tick (February 30th).
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, errors.New("the expression never ticks")
	}
	return c, nil
}

// Next is the first tick after t, in UTC; zero if there is none in the
// next five years.
func (c *Cron) Next(t time.Time) time.Time {
	n := c.sched.Next(t.In(c.Location))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// Latest is the last tick at or before t that is after since, zero when
// there is none: after downtime, the tick a schedule runs (once, late).
func (c *Cron) Latest(since, t time.Time) time.Time {
	// Look back from t over a window that doubles until it holds a tick,
	// then step to the last one: a few steps however long the downtime.
	for w := time.Minute; ; w *= 2 {
		from := t.Add(-w)
		if !from.After(since) {
			from = since
		}
		if next := c.Next(from); !next.IsZero() && !next.After(t) {
			last := next
			for n := c.Next(last); !n.IsZero() && !n.After(t); n = c.Next(n) {
				last = n
			}
			return last
		}
		if from.Equal(since) {
			return time.Time{}
		}
	}
}
