-- Events waiting to be published to NATS JetStream (NATS_URL): a row is
-- written in the transaction that writes its event, and deleted once
-- JetStream has acknowledged the event.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
