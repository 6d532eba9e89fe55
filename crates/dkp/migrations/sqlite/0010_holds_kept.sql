-- A bidder's hold on a lot keeps its row until the lot settles: outbid, its
-- amount goes to zero (as on PostgreSQL, where that spares the table the
-- dead rows of a delete and an insert per change of a lot's leader). SQLite
-- changes a check only by making the table again.
CREATE TABLE holds_kept (
    lot_id BLOB NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL CHECK (amount >= 0),
    seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (lot_id, account_id)
);
INSERT INTO holds_kept (lot_id, account_id, amount, seq) SELECT lot_id, account_id, amount, seq FROM holds;
DROP TABLE holds;
ALTER TABLE holds_kept RENAME TO holds;
CREATE INDEX holds_account_idx ON holds (account_id);
