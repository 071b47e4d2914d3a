-- A gate that tells a flaky check from a bad change (issue 57): each check's runs, failures
-- and flakes (a failure that did not come back on the same tree), each flake with its
-- evidence, and the quarantine: tests whose failure alone does not block a landing.
CREATE TABLE check_figures (
    command         TEXT PRIMARY KEY,
    runs            INTEGER NOT NULL DEFAULT 0,  -- first runs, on a tree not run before
    failures        INTEGER NOT NULL DEFAULT 0,  -- of those, failed (flakes among them)
    flakes          INTEGER NOT NULL DEFAULT 0,
    reruns          INTEGER NOT NULL DEFAULT 0,
    rerun_seconds   REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE check_flakes (
    id              INTEGER PRIMARY KEY,
    target          TEXT NOT NULL,
    command         TEXT NOT NULL,
    tree            TEXT NOT NULL,
    tests           TEXT NOT NULL DEFAULT '[]',  -- JSON: the tests that failed, from JUnit
    reruns          INTEGER NOT NULL,  -- runs after the failure, up to its pass
    output          TEXT NOT NULL,  -- the failing run's summary and tail
    at              TEXT NOT NULL
);

CREATE TABLE quarantine (
    test            TEXT PRIMARY KEY,  -- as JUnit names it: classname::name
    evidence        TEXT NOT NULL,
    added_by        TEXT NOT NULL,
    added_at        TEXT NOT NULL,
    expires_at      TEXT NOT NULL
) WITHOUT ROWID;
