-- Raids (issue 10): a pool's earning rules and whether it is zero-sum; raids
-- with their attendance and boss kills; the entries a raid's award wrote and
-- the lots of a raid name it. Amounts are hundredths of a point in bigint;
-- a percent is in hundredths of a percent (5000 is 50 %).

ALTER TABLE pools ADD COLUMN zero_sum boolean NOT NULL DEFAULT false;
ALTER TABLE pools ADD COLUMN boss_kill bigint NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN on_time bigint NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN per_hour bigint NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN standby_percent bigint NOT NULL DEFAULT 0;

-- The rules columns of a raid are null until its first award writes an
-- entry, then hold the pool's rules of that moment for good: a correction
-- pays the difference of the record, never of rules changed since.
CREATE TABLE raids (
    id uuid PRIMARY KEY,
    guild_id uuid NOT NULL REFERENCES guilds (id),
    pool_id uuid NOT NULL REFERENCES pools (id),
    name text NOT NULL,
    zone text,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    created_at timestamptz NOT NULL,
    created_by uuid NOT NULL REFERENCES members (id),
    boss_kill bigint,
    on_time bigint,
    per_hour bigint,
    standby_percent bigint
);
CREATE INDEX raids_guild_idx ON raids (guild_id, id);
CREATE INDEX raids_pool_idx ON raids (pool_id, started_at, id);

-- Who came: replaced as a whole when an officer corrects it.
CREATE TABLE raid_attendance (
    raid_id uuid NOT NULL REFERENCES raids (id),
    member_id uuid NOT NULL REFERENCES members (id),
    minutes integer NOT NULL CHECK (minutes >= 0),
    on_time boolean NOT NULL,
    standby boolean NOT NULL,
    PRIMARY KEY (raid_id, member_id)
);
CREATE INDEX raid_attendance_member_idx ON raid_attendance (member_id);

CREATE TABLE raid_kills (
    id uuid PRIMARY KEY,
    raid_id uuid NOT NULL REFERENCES raids (id),
    boss text NOT NULL,
    killed_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX raid_kills_raid_idx ON raid_kills (raid_id, killed_at);

-- The raid an entry pays out (`raid`, `raid_correction`, and the reversal
-- of either): what a raid has paid is the sum of these entries' postings.
ALTER TABLE entries ADD COLUMN raid_id uuid REFERENCES raids (id);
CREATE INDEX entries_raid_idx ON entries (raid_id) WHERE raid_id IS NOT NULL;

ALTER TABLE lots ADD COLUMN raid_id uuid REFERENCES raids (id);
CREATE INDEX lots_raid_idx ON lots (raid_id) WHERE raid_id IS NOT NULL;
