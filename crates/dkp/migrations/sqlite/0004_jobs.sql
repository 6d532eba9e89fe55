-- Background jobs (lot closing, decay): written in the transaction of the
-- change that causes them, claimed by one runner at a time for a lease, and
-- claimed again by another runner when a lease runs out unfinished.

CREATE TABLE jobs (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    dedup_key TEXT CONSTRAINT jobs_dedup_key_key UNIQUE,
    guild_id BLOB REFERENCES guilds (id),
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    run_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    locked_by TEXT,
    locked_until INTEGER,
    result TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE state = 'queued';

-- Lots opened before jobs existed get their closing job.
INSERT INTO jobs (id, kind, dedup_key, guild_id, payload, state, run_at, created_at)
SELECT randomblob(16), 'close_lot', 'close_lot:' || u.text, l.guild_id,
       '{"lot_id":"' || u.text || '"}', 'queued', l.ends_at, l.created_at
  FROM lots l,
       (SELECT id, lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || substr(hex(id), 13, 4)
               || '-' || substr(hex(id), 17, 4) || '-' || substr(hex(id), 21)) AS text FROM lots) u
 WHERE u.id = l.id AND l.status = 'open';
