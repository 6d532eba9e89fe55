-- Lock lanes for ledger writers across instances. A writer of a pool first
-- takes `LOCK TABLE ledger_lane_NN` for its pool's lane: LOCK TABLE takes no
-- snapshot, so the SERIALIZABLE snapshot that follows is taken after the
-- previous writer of the lane committed, and has nothing to conflict with.
-- (A row lock cannot do this: the statement that takes it takes the snapshot
-- first.) The tables hold no rows; only their locks matter.
DO $$
BEGIN
    FOR lane IN 0..63 LOOP
        EXECUTE format('CREATE TABLE ledger_lane_%s (lane smallint)', lpad(lane::text, 2, '0'));
    END LOOP;
END
$$;
