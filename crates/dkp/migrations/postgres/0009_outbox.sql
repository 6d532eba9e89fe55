-- Events waiting to be published to NATS JetStream (NATS_URL): a row is
-- written in the transaction that writes its event, and deleted once
-- JetStream has acknowledged the event. Ids follow the order events were
-- written, which within a channel is the order of their offsets.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    channel text NOT NULL,
    "offset" bigint NOT NULL,
    created_at timestamptz NOT NULL
);
