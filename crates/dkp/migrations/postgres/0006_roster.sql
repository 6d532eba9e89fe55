-- The roster: members without an account (added by name, linked to a user
-- later), every member's name, members taken off the roster (inactive: their
-- history and balances stay); members' characters; and pools' decay
-- schedules.

ALTER TABLE members ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE members ADD COLUMN name text;
-- The name as compared: lowercased, accents kept (see dkp_core::roster).
ALTER TABLE members ADD COLUMN name_folded text;
ALTER TABLE members ADD COLUMN active boolean NOT NULL DEFAULT true;
UPDATE members m SET name = u.username, name_folded = u.username_folded FROM users u WHERE u.id = m.user_id;
ALTER TABLE members ALTER COLUMN name SET NOT NULL;
ALTER TABLE members ALTER COLUMN name_folded SET NOT NULL;
ALTER TABLE members ADD CONSTRAINT members_guild_name_key UNIQUE (guild_id, name_folded);

CREATE TABLE characters (
    id uuid PRIMARY KEY,
    guild_id uuid NOT NULL REFERENCES guilds (id),
    member_id uuid NOT NULL REFERENCES members (id),
    name text NOT NULL,
    realm text,
    name_folded text NOT NULL,
    -- Empty for a character without a realm, so that it is unique too.
    realm_folded text NOT NULL,
    class text,
    spec text,
    main boolean NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT characters_guild_name_key UNIQUE (guild_id, name_folded, realm_folded)
);
CREATE INDEX characters_member_idx ON characters (member_id);
-- One main per member.
CREATE UNIQUE INDEX characters_member_main_key ON characters (member_id) WHERE main;

-- A pool's decay that runs by itself. `version` is new each time the
-- schedule is set: a planned run names it, and a run whose version or
-- period no longer matches does nothing.
CREATE TABLE decay_schedules (
    pool_id uuid PRIMARY KEY REFERENCES pools (id),
    guild_id uuid NOT NULL REFERENCES guilds (id),
    version uuid NOT NULL,
    percent bigint NOT NULL CHECK (percent > 0 AND percent <= 10000),
    every_days integer NOT NULL CHECK (every_days >= 1),
    next_at timestamptz NOT NULL,
    -- The member who set it, who makes its entries.
    set_by uuid NOT NULL REFERENCES members (id),
    updated_at timestamptz NOT NULL
);
