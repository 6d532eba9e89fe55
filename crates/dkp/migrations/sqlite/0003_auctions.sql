CREATE TABLE lots (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    pool_id BLOB NOT NULL REFERENCES pools (id),
    item_name TEXT NOT NULL,
    game_item_id TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('open', 'sealed_first', 'sealed_second')),
    status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'cancelled')),
    min_bid INTEGER NOT NULL,
    increment INTEGER NOT NULL,
    anti_snipe_s INTEGER NOT NULL,
    extend_s INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by BLOB NOT NULL REFERENCES members (id),
    seq INTEGER NOT NULL,
    bid_count INTEGER NOT NULL DEFAULT 0,
    high_bid INTEGER,
    leader_member_id BLOB REFERENCES members (id),
    winner_member_id BLOB REFERENCES members (id),
    price INTEGER,
    settlement_entry_id BLOB REFERENCES entries (id),
    closed_at INTEGER,
    cancel_reason TEXT
);
CREATE INDEX lots_guild_idx ON lots (guild_id, status, id);
CREATE INDEX lots_due_idx ON lots (ends_at) WHERE status = 'open';

CREATE TABLE bids (
    id BLOB PRIMARY KEY,
    lot_id BLOB NOT NULL REFERENCES lots (id),
    member_id BLOB NOT NULL REFERENCES members (id),
    amount INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT bids_lot_seq_key UNIQUE (lot_id, seq)
);

ALTER TABLE holds ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE events (
    channel TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (channel, "offset")
);

CREATE TABLE channel_offsets (
    channel TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
