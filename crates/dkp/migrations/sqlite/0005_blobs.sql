-- Images kept in the object store (BLOB_URL): the guild's logo and each
-- lot's icon. The columns hold the object's key, `g/{guild_id}/{sha256}.{ext}`,
-- never a URL, so moving the public base (a CDN) needs no data change.

ALTER TABLE guilds ADD COLUMN logo_key TEXT;
ALTER TABLE lots ADD COLUMN icon_key TEXT;
