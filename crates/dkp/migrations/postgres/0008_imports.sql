-- Files imported into a pool, by the SHA-256 of their bytes: the same file
-- into the same pool a second time writes nothing and answers the report
-- kept here. `entry_id` is the import's ledger entry (none when no balance
-- moved).
CREATE TABLE imports (
    id UUID PRIMARY KEY,
    guild_id UUID NOT NULL REFERENCES guilds (id),
    pool_id UUID NOT NULL REFERENCES pools (id),
    content_hash BYTEA NOT NULL,
    format TEXT NOT NULL,
    report TEXT NOT NULL,
    entry_id UUID REFERENCES entries (id),
    created_by UUID NOT NULL REFERENCES members (id),
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT imports_pool_hash_key UNIQUE (pool_id, content_hash)
);
