-- Background jobs (lot closing, decay): written in the transaction of the
-- change that causes them, claimed by one runner at a time for a lease, and
-- claimed again by another runner when a lease runs out unfinished.

CREATE TABLE jobs (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    -- At most one job per key (a lot has one closing job).
    dedup_key text CONSTRAINT jobs_dedup_key_key UNIQUE,
    guild_id uuid REFERENCES guilds (id),
    payload text NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    run_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    locked_by text,
    locked_until timestamptz,
    result text,
    last_error text,
    created_at timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE state = 'queued';

-- Lots opened before jobs existed get their closing job.
INSERT INTO jobs (id, kind, dedup_key, guild_id, payload, state, run_at, created_at)
SELECT gen_random_uuid(), 'close_lot', 'close_lot:' || id::text, guild_id,
       '{"lot_id":"' || id::text || '"}', 'queued', ends_at, now()
  FROM lots WHERE status = 'open';
