-- A bidder's hold on a lot keeps its row until the lot settles: outbid, its
-- amount goes to zero in place. A raid night changes some lot's leader with
-- almost every bid; a delete and an insert per change left dead rows that
-- every later lock of a wallet or a lot read through until a vacuum came,
-- where an update of the amount alone is heap-only, and pruned on the page.
ALTER TABLE holds DROP CONSTRAINT holds_amount_check;
ALTER TABLE holds ADD CONSTRAINT holds_amount_check CHECK (amount >= 0);
-- Room on each page for those updates.
ALTER TABLE holds SET (fillfactor = 70);
