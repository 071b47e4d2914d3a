-- Bearer tokens for the HTTP transport. Only a SHA-256 digest of each secret is kept: the
-- secrets are 256 random bits, so a slow password hash would add nothing but latency.
CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY,               -- public handle shown by `tokens list`
    secret_sha256   TEXT NOT NULL UNIQUE,           -- hex digest of the bearer secret
    name            TEXT NOT NULL,                  -- the agent id, person or operator it stands for
    role            TEXT NOT NULL CHECK (role IN ('agent', 'person', 'operator')),
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    last_used_at    TEXT,
    revoked_at      TEXT
);
