-- The run history: run, action and delivery outcome records as
-- docs/outputs.md defines them, each keyed by its own id, with the
-- columns the queries filter on and the record itself (doc, re-encoded
-- JSON). Times are UTC to the microsecond.

CREATE TABLE runs (
    run_id        text        NOT NULL PRIMARY KEY,
    workspace     text        NOT NULL,
    automation_id text        NOT NULL,
    event_id      text        NOT NULL,
    object        text        NOT NULL,
    record_id     text        NOT NULL,
    ran_at        timestamptz NOT NULL,
    outcome       text        NOT NULL,
    reason        text        NOT NULL,
    doc           json        NOT NULL
);

-- Newest first within a workspace, by the filters the API takes. Every
-- list query orders by (ran_at, run_id) and continues after a cursor on
-- them, so each index ends with both.
CREATE INDEX runs_time ON runs (workspace, ran_at, run_id);
CREATE INDEX runs_automation_time ON runs (workspace, automation_id, ran_at, run_id);
CREATE INDEX runs_record_time ON runs (workspace, object, record_id, ran_at, run_id) WHERE record_id <> '';
CREATE INDEX runs_event ON runs (workspace, event_id);
-- Skipped and error runs are few among completed ones: partial indexes
-- find them without scanning the completed, and cost little to keep.
CREATE INDEX runs_outcome_time ON runs (workspace, outcome, ran_at, run_id) WHERE outcome <> 'completed';
CREATE INDEX runs_automation_outcome_time ON runs (workspace, automation_id, outcome, ran_at, run_id) WHERE outcome <> 'completed';
CREATE INDEX runs_reason_time ON runs (workspace, reason, ran_at, run_id) WHERE reason <> '';

CREATE TABLE actions (
    action_id     text        NOT NULL PRIMARY KEY,
    workspace     text        NOT NULL,
    run_id        text        NOT NULL,
    automation_id text        NOT NULL,
    fired_at      timestamptz NOT NULL,
    doc           json        NOT NULL
);
CREATE INDEX actions_fired_at ON actions (fired_at);

-- One delivery outcome per action and destination. final is false for a
-- status that may still change; a final outcome is never replaced.
CREATE TABLE outcomes (
    action_id   text        NOT NULL,
    destination text        NOT NULL,
    workspace   text        NOT NULL,
    run_id      text        NOT NULL,
    status      text        NOT NULL,
    final       boolean     NOT NULL,
    at          timestamptz NOT NULL,
    doc         json        NOT NULL,
    PRIMARY KEY (action_id, destination)
);
CREATE INDEX outcomes_at ON outcomes (at);

-- Runs per automation, hour, outcome and reason, added to as runs are
-- inserted (only those inserted: a redelivered run is not counted again).
-- The overview's counts and charts read these, not the runs.
CREATE TABLE run_counts (
    workspace     text        NOT NULL,
    automation_id text        NOT NULL,
    hour          timestamptz NOT NULL,
    outcome       text        NOT NULL,
    reason        text        NOT NULL,
    runs          bigint      NOT NULL,
    PRIMARY KEY (workspace, automation_id, hour, outcome, reason)
);
-- The overview sums a window of every automation: an index-only scan.
CREATE INDEX run_counts_hour ON run_counts (workspace, hour) INCLUDE (automation_id, outcome, reason, runs);

-- The last run (kind 'run') and the last error ('error') of each
-- automation: the later by (ran_at, run_id) wins.
CREATE TABLE automation_latest (
    workspace     text        NOT NULL,
    automation_id text        NOT NULL,
    kind          text        NOT NULL,
    run_id        text        NOT NULL,
    ran_at        timestamptz NOT NULL,
    outcome       text        NOT NULL,
    reason        text        NOT NULL,
    error         text        NOT NULL,
    PRIMARY KEY (workspace, automation_id, kind)
);
