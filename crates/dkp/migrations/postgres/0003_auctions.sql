-- Lots, their bids, and the durable event log that the real-time feed
-- replays from. A lot's standing bids are its holds (with their seq).

CREATE TABLE lots (
    id uuid PRIMARY KEY,
    guild_id uuid NOT NULL REFERENCES guilds (id),
    pool_id uuid NOT NULL REFERENCES pools (id),
    item_name text NOT NULL,
    game_item_id text,
    mode text NOT NULL CHECK (mode IN ('open', 'sealed_first', 'sealed_second')),
    status text NOT NULL CHECK (status IN ('open', 'closed', 'cancelled')),
    min_bid bigint NOT NULL,
    increment bigint NOT NULL,
    anti_snipe_s integer NOT NULL,
    extend_s integer NOT NULL,
    ends_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    created_by uuid NOT NULL REFERENCES members (id),
    seq bigint NOT NULL,
    bid_count bigint NOT NULL DEFAULT 0,
    high_bid bigint,
    leader_member_id uuid REFERENCES members (id),
    winner_member_id uuid REFERENCES members (id),
    price bigint,
    settlement_entry_id uuid REFERENCES entries (id),
    closed_at timestamptz,
    cancel_reason text
);
CREATE INDEX lots_guild_idx ON lots (guild_id, status, id);
CREATE INDEX lots_due_idx ON lots (ends_at) WHERE status = 'open';

CREATE TABLE bids (
    id uuid PRIMARY KEY,
    lot_id uuid NOT NULL REFERENCES lots (id),
    member_id uuid NOT NULL REFERENCES members (id),
    amount bigint NOT NULL,
    seq bigint NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT bids_lot_seq_key UNIQUE (lot_id, seq)
);

ALTER TABLE holds ADD COLUMN seq bigint NOT NULL DEFAULT 0;

-- Every event published, written in the transaction that caused it.
CREATE TABLE events (
    channel text NOT NULL,
    "offset" bigint NOT NULL,
    name text NOT NULL,
    data text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (channel, "offset")
);

-- The last offset of each channel that is not a lot's (a lot's is its seq).
CREATE TABLE channel_offsets (
    channel text PRIMARY KEY,
    last bigint NOT NULL
);

