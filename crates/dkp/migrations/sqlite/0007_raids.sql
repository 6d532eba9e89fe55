-- Raids (issue 10): a pool's earning rules and whether it is zero-sum; raids
-- with their attendance and boss kills; the entries a raid's award wrote and
-- the lots of a raid name it. Amounts are hundredths of a point in INTEGER;
-- a percent is in hundredths of a percent (5000 is 50 %).

ALTER TABLE pools ADD COLUMN zero_sum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN boss_kill INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN on_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN per_hour INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN standby_percent INTEGER NOT NULL DEFAULT 0;

-- The rules columns of a raid are null until its first award writes an
-- entry, then hold the pool's rules of that moment for good: a correction
-- pays the difference of the record, never of rules changed since.
CREATE TABLE raids (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    pool_id BLOB NOT NULL REFERENCES pools (id),
    name TEXT NOT NULL,
    zone TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by BLOB NOT NULL REFERENCES members (id),
    boss_kill INTEGER,
    on_time INTEGER,
    per_hour INTEGER,
    standby_percent INTEGER
);
CREATE INDEX raids_guild_idx ON raids (guild_id, id);
CREATE INDEX raids_pool_idx ON raids (pool_id, started_at, id);

-- Who came: replaced as a whole when an officer corrects it.
CREATE TABLE raid_attendance (
    raid_id BLOB NOT NULL REFERENCES raids (id),
    member_id BLOB NOT NULL REFERENCES members (id),
    minutes INTEGER NOT NULL CHECK (minutes >= 0),
    on_time INTEGER NOT NULL,
    standby INTEGER NOT NULL,
    PRIMARY KEY (raid_id, member_id)
);
CREATE INDEX raid_attendance_member_idx ON raid_attendance (member_id);

CREATE TABLE raid_kills (
    id BLOB PRIMARY KEY,
    raid_id BLOB NOT NULL REFERENCES raids (id),
    boss TEXT NOT NULL,
    killed_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX raid_kills_raid_idx ON raid_kills (raid_id, killed_at);

-- The raid an entry pays out (`raid`, `raid_correction`, and the reversal
-- of either): what a raid has paid is the sum of these entries' postings.
ALTER TABLE entries ADD COLUMN raid_id BLOB REFERENCES raids (id);
CREATE INDEX entries_raid_idx ON entries (raid_id) WHERE raid_id IS NOT NULL;

ALTER TABLE lots ADD COLUMN raid_id BLOB REFERENCES raids (id);
CREATE INDEX lots_raid_idx ON lots (raid_id) WHERE raid_id IS NOT NULL;
