-- Accounts, guilds, pools, the double-entry ledger, idempotency keys and the
-- audit log. Ids are UUIDs made by the service; amounts are hundredths of a
-- point in bigint; entries, postings and audit rows are never changed.

CREATE TABLE users (
    id uuid PRIMARY KEY,
    username text NOT NULL,
    username_folded text NOT NULL CONSTRAINT users_username_key UNIQUE,
    display_name text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE guilds (
    id uuid PRIMARY KEY,
    slug text NOT NULL CONSTRAINT guilds_slug_key UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE members (
    id uuid PRIMARY KEY,
    guild_id uuid NOT NULL REFERENCES guilds (id),
    user_id uuid NOT NULL REFERENCES users (id),
    role text NOT NULL CHECK (role IN ('member', 'officer', 'owner')),
    created_at timestamptz NOT NULL,
    CONSTRAINT members_guild_user_key UNIQUE (guild_id, user_id)
);
CREATE INDEX members_user_idx ON members (user_id);

CREATE TABLE pools (
    id uuid PRIMARY KEY,
    guild_id uuid NOT NULL REFERENCES guilds (id),
    name text NOT NULL,
    allow_negative boolean NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT pools_guild_name_key UNIQUE (guild_id, name)
);
CREATE INDEX pools_guild_idx ON pools (guild_id, id);

-- One account per member and pool, and the pool's system accounts.
CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    guild_id uuid NOT NULL REFERENCES guilds (id),
    pool_id uuid NOT NULL REFERENCES pools (id),
    member_id uuid REFERENCES members (id),
    system text CHECK (system IN ('issued', 'spent', 'decayed')),
    balance bigint NOT NULL DEFAULT 0,
    CHECK ((member_id IS NULL) <> (system IS NULL)),
    CONSTRAINT accounts_pool_member_key UNIQUE (pool_id, member_id),
    CONSTRAINT accounts_pool_system_key UNIQUE (pool_id, system)
);

CREATE TABLE entries (
    id uuid PRIMARY KEY,
    guild_id uuid NOT NULL REFERENCES guilds (id),
    pool_id uuid NOT NULL REFERENCES pools (id),
    kind text NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL,
    created_by uuid NOT NULL REFERENCES members (id),
    reverses uuid REFERENCES entries (id) CONSTRAINT entries_reverses_key UNIQUE
);
CREATE INDEX entries_pool_idx ON entries (pool_id, id);

CREATE TABLE postings (
    entry_id uuid NOT NULL REFERENCES entries (id),
    account_id uuid NOT NULL REFERENCES accounts (id),
    amount bigint NOT NULL,
    -- The posting's place in its entry, so it reads back in the order written.
    line integer NOT NULL,
    PRIMARY KEY (entry_id, account_id)
);
CREATE INDEX postings_account_idx ON postings (account_id, entry_id);

-- Points reserved by leading bids on open lots; `held` is their sum.
CREATE TABLE holds (
    lot_id uuid NOT NULL,
    account_id uuid NOT NULL REFERENCES accounts (id),
    amount bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (lot_id, account_id)
);
CREATE INDEX holds_account_idx ON holds (account_id);

CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL REFERENCES users (id),
    key text NOT NULL,
    fingerprint bytea NOT NULL,
    status integer NOT NULL,
    response text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE audit_log (
    id uuid PRIMARY KEY,
    guild_id uuid REFERENCES guilds (id),
    actor_id uuid,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    request_id text,
    created_at timestamptz NOT NULL,
    before jsonb,
    after jsonb
);
CREATE INDEX audit_log_guild_idx ON audit_log (guild_id, id);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
