-- GitHub's webhook deliveries (issue 55): each delivery id once. A delivery is recorded in
-- the transaction that acts on it, so a replay (the same id again) is refused and changes
-- nothing, and a delivery whose transaction failed can be delivered again.
CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    at          TEXT NOT NULL
);
