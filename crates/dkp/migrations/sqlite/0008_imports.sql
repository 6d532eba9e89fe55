-- Files imported into a pool, by the SHA-256 of their bytes: the same file
-- into the same pool a second time writes nothing and answers the report
-- kept here. `entry_id` is the import's ledger entry (none when no balance
-- moved).
CREATE TABLE imports (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    pool_id BLOB NOT NULL REFERENCES pools (id),
    content_hash BLOB NOT NULL,
    format TEXT NOT NULL,
    report TEXT NOT NULL,
    entry_id BLOB REFERENCES entries (id),
    created_by BLOB NOT NULL REFERENCES members (id),
    created_at INTEGER NOT NULL,
    CONSTRAINT imports_pool_hash_key UNIQUE (pool_id, content_hash)
);
