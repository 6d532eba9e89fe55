-- The SQLite twin of the PostgreSQL schema: uuid as 16-byte blobs, times as
-- integer microseconds since 1970, amounts as integer hundredths.

CREATE TABLE users (
    id BLOB PRIMARY KEY,
    username TEXT NOT NULL,
    username_folded TEXT NOT NULL CONSTRAINT users_username_key UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE guilds (
    id BLOB PRIMARY KEY,
    slug TEXT NOT NULL CONSTRAINT guilds_slug_key UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE members (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    user_id BLOB NOT NULL REFERENCES users (id),
    role TEXT NOT NULL CHECK (role IN ('member', 'officer', 'owner')),
    created_at INTEGER NOT NULL,
    CONSTRAINT members_guild_user_key UNIQUE (guild_id, user_id)
);
CREATE INDEX members_user_idx ON members (user_id);

CREATE TABLE pools (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    name TEXT NOT NULL,
    allow_negative INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT pools_guild_name_key UNIQUE (guild_id, name)
);
CREATE INDEX pools_guild_idx ON pools (guild_id, id);

CREATE TABLE accounts (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    pool_id BLOB NOT NULL REFERENCES pools (id),
    member_id BLOB REFERENCES members (id),
    system TEXT CHECK (system IN ('issued', 'spent', 'decayed')),
    balance INTEGER NOT NULL DEFAULT 0,
    CHECK ((member_id IS NULL) <> (system IS NULL)),
    CONSTRAINT accounts_pool_member_key UNIQUE (pool_id, member_id),
    CONSTRAINT accounts_pool_system_key UNIQUE (pool_id, system)
);

CREATE TABLE entries (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    pool_id BLOB NOT NULL REFERENCES pools (id),
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by BLOB NOT NULL REFERENCES members (id),
    reverses BLOB REFERENCES entries (id) CONSTRAINT entries_reverses_key UNIQUE
);
CREATE INDEX entries_pool_idx ON entries (pool_id, id);

CREATE TABLE postings (
    entry_id BLOB NOT NULL REFERENCES entries (id),
    account_id BLOB NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL,
    -- The posting's place in its entry, so it reads back in the order written.
    line INTEGER NOT NULL,
    PRIMARY KEY (entry_id, account_id)
);
CREATE INDEX postings_account_idx ON postings (account_id, entry_id);

CREATE TABLE holds (
    lot_id BLOB NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    PRIMARY KEY (lot_id, account_id)
);
CREATE INDEX holds_account_idx ON holds (account_id);

CREATE TABLE idempotency_keys (
    user_id BLOB NOT NULL REFERENCES users (id),
    key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE audit_log (
    id BLOB PRIMARY KEY,
    guild_id BLOB REFERENCES guilds (id),
    actor_id BLOB,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    request_id TEXT,
    created_at INTEGER NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX audit_log_guild_idx ON audit_log (guild_id, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'entries is append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'entries is append-only'); END;
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
    BEGIN SELECT RAISE(ABORT, 'postings is append-only'); END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
    BEGIN SELECT RAISE(ABORT, 'postings is append-only'); END;
