-- The run history in an embedded SQLite file: the same tables and
-- indexes as PostgreSQL's (history/store/postgres/migrations), with
-- times as INTEGER Unix microseconds (UTC) and JSON as TEXT.

CREATE TABLE runs (
    run_id        TEXT    NOT NULL PRIMARY KEY,
    workspace     TEXT    NOT NULL,
    automation_id TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    object        TEXT    NOT NULL,
    record_id     TEXT    NOT NULL,
    ran_at        INTEGER NOT NULL,
    outcome       TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    doc           TEXT    NOT NULL
);
CREATE INDEX runs_time ON runs (workspace, ran_at, run_id);
CREATE INDEX runs_automation_time ON runs (workspace, automation_id, ran_at, run_id);
CREATE INDEX runs_record_time ON runs (workspace, object, record_id, ran_at, run_id) WHERE record_id <> '';
CREATE INDEX runs_event ON runs (workspace, event_id);
CREATE INDEX runs_outcome_time ON runs (workspace, outcome, ran_at, run_id) WHERE outcome <> 'completed';
CREATE INDEX runs_automation_outcome_time ON runs (workspace, automation_id, outcome, ran_at, run_id) WHERE outcome <> 'completed';
CREATE INDEX runs_reason_time ON runs (workspace, reason, ran_at, run_id) WHERE reason <> '';

CREATE TABLE actions (
    action_id     TEXT    NOT NULL PRIMARY KEY,
    workspace     TEXT    NOT NULL,
    run_id        TEXT    NOT NULL,
    automation_id TEXT    NOT NULL,
    fired_at      INTEGER NOT NULL,
    doc           TEXT    NOT NULL
);
CREATE INDEX actions_fired_at ON actions (fired_at);

CREATE TABLE outcomes (
    action_id   TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    workspace   TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    final       INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    doc         TEXT    NOT NULL,
    PRIMARY KEY (action_id, destination)
);
CREATE INDEX outcomes_at ON outcomes (at);

CREATE TABLE run_counts (
    workspace     TEXT    NOT NULL,
    automation_id TEXT    NOT NULL,
    hour          INTEGER NOT NULL,
    outcome       TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    runs          INTEGER NOT NULL,
    PRIMARY KEY (workspace, automation_id, hour, outcome, reason)
);
CREATE INDEX run_counts_hour ON run_counts (workspace, hour, automation_id, outcome, reason, runs);

CREATE TABLE automation_latest (
    workspace     TEXT    NOT NULL,
    automation_id TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    run_id        TEXT    NOT NULL,
    ran_at        INTEGER NOT NULL,
    outcome       TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    error         TEXT    NOT NULL,
    PRIMARY KEY (workspace, automation_id, kind)
);
