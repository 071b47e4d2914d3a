-- Shared project context: named sections with a version each (optimistic concurrency) and
-- their history. state/context.md is rendered from these tables.

CREATE TABLE context_sections (
    name            TEXT PRIMARY KEY,
    version         INTEGER NOT NULL,
    content         TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    created_at      TEXT NOT NULL      -- sections render in creation order
);

CREATE TABLE context_history (
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    mode            TEXT NOT NULL CHECK (mode IN ('replace', 'append')),
    content         TEXT NOT NULL,     -- the whole section as of this version
    author          TEXT NOT NULL,
    at              TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
