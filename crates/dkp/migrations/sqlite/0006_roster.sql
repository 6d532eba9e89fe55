-- The roster: members without an account (added by name, linked to a user
-- later), every member's name, members taken off the roster (inactive: their
-- history and balances stay); members' characters; and pools' decay
-- schedules.
--
-- SQLite cannot drop a NOT NULL in place: `members` is rebuilt (the runner
-- applies migrations with foreign keys off and checks them before commit).

CREATE TABLE members_rebuilt (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    user_id BLOB REFERENCES users (id),
    role TEXT NOT NULL CHECK (role IN ('member', 'officer', 'owner')),
    created_at INTEGER NOT NULL,
    name TEXT NOT NULL,
    -- The name as compared: lowercased, accents kept (see dkp_core::roster).
    name_folded TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT members_guild_user_key UNIQUE (guild_id, user_id),
    CONSTRAINT members_guild_name_key UNIQUE (guild_id, name_folded)
);
INSERT INTO members_rebuilt (id, guild_id, user_id, role, created_at, name, name_folded, active)
SELECT m.id, m.guild_id, m.user_id, m.role, m.created_at, u.username, u.username_folded, 1
  FROM members m JOIN users u ON u.id = m.user_id;
DROP TABLE members;
ALTER TABLE members_rebuilt RENAME TO members;
CREATE INDEX members_user_idx ON members (user_id);

CREATE TABLE characters (
    id BLOB PRIMARY KEY,
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    member_id BLOB NOT NULL REFERENCES members (id),
    name TEXT NOT NULL,
    realm TEXT,
    name_folded TEXT NOT NULL,
    -- Empty for a character without a realm, so that it is unique too.
    realm_folded TEXT NOT NULL,
    class TEXT,
    spec TEXT,
    main INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT characters_guild_name_key UNIQUE (guild_id, name_folded, realm_folded)
);
CREATE INDEX characters_member_idx ON characters (member_id);
-- One main per member.
CREATE UNIQUE INDEX characters_member_main_key ON characters (member_id) WHERE main;

-- A pool's decay that runs by itself. `version` is new each time the
-- schedule is set: a planned run names it, and a run whose version or
-- period no longer matches does nothing.
CREATE TABLE decay_schedules (
    pool_id BLOB PRIMARY KEY REFERENCES pools (id),
    guild_id BLOB NOT NULL REFERENCES guilds (id),
    version BLOB NOT NULL,
    percent INTEGER NOT NULL CHECK (percent > 0 AND percent <= 10000),
    every_days INTEGER NOT NULL CHECK (every_days >= 1),
    next_at INTEGER NOT NULL,
    set_by BLOB NOT NULL REFERENCES members (id),
    updated_at INTEGER NOT NULL
);
