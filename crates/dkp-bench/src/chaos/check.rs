//! What must hold after a round, whatever died during it: read straight from
//! the cluster's database (the one judge of what was committed) and held
//! against what the clients were told.

use std::collections::{BTreeMap, HashMap};

use super::cluster::Psql;
use super::load::RaidRecord;
use super::record::{AckedBid, LedgerOp, Outcome, Track};
use crate::setup::hundredths;

/// Members whose available points are below zero in a pool that does not
/// allow it. (A raid's correction or a decay may leave one so by design,
/// `dkp_core::ledger::Check::of`; the clients never have them take points
/// from a member who holds any.) No committed state may have one, so the
/// round also asks it of
/// the database while the load runs (`watch`): a wallet backing two lots at
/// once is soon undone by a third bidder outbidding one of them, and would
/// be gone by the round's end.
pub const OVERDRAWN: (&str, &str) = (
    "a member's available points are below zero in a pool that does not allow it",
    "SELECT a.id, a.balance, COALESCE(h.held, 0) FROM accounts a JOIN pools pl ON pl.id = a.pool_id \
     LEFT JOIN (SELECT h.account_id, SUM(h.amount) AS held FROM holds h JOIN lots l ON l.id = h.lot_id \
                WHERE l.status = 'open' GROUP BY h.account_id) h ON h.account_id = a.id \
     WHERE a.member_id IS NOT NULL AND NOT pl.allow_negative AND a.balance - COALESCE(h.held, 0) < 0",
);

/// Asks `OVERDRAWN` of the database every 50 ms until `deadline` (over one
/// connection, kept in `dir`'s file while it runs): each overdrawn account
/// it sees, once.
pub async fn watch(postgres: Psql, deadline: std::time::Instant, dir: std::path::PathBuf) -> Vec<String> {
    let every = std::time::Duration::from_millis(50);
    let out = dir.join("overdrawn.watch");
    let rows = tokio::task::spawn_blocking(move || postgres.watch(OVERDRAWN.1, every, deadline, &out));
    let seen: std::collections::BTreeSet<String> =
        rows.await.unwrap_or_default().into_iter().map(|row| row.join(" ")).collect();
    let more = seen.len().saturating_sub(5);
    let mut found: Vec<String> =
        seen.into_iter().take(5).map(|row| format!("{} (while the load ran): {row}", OVERDRAWN.0)).collect();
    if more > 0 {
        found.push(format!("{} (while the load ran): {more} more", OVERDRAWN.0));
    }
    found
}

/// Queries whose every row is a broken guarantee, each with what it means.
const NOTHING_EXPECTED: &[(&str, &str)] = &[
    OVERDRAWN,
    (
        "the postings of a pool do not sum to zero",
        "SELECT e.pool_id, SUM(p.amount) FROM postings p JOIN entries e ON e.id = p.entry_id \
         GROUP BY e.pool_id HAVING SUM(p.amount) <> 0",
    ),
    (
        "the postings of an entry do not sum to zero",
        "SELECT entry_id, SUM(amount) FROM postings GROUP BY entry_id HAVING SUM(amount) <> 0",
    ),
    (
        "an account's balance is not the sum of its postings",
        "SELECT a.id, a.balance, COALESCE(p.total, 0) FROM accounts a \
         LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM postings GROUP BY account_id) p ON p.account_id = a.id \
         WHERE a.balance <> COALESCE(p.total, 0)",
    ),
    (
        "a lot that has ended still holds points",
        "SELECT h.lot_id, h.account_id, h.amount FROM holds h JOIN lots l ON l.id = h.lot_id \
         WHERE l.status <> 'open' AND h.amount > 0",
    ),
    (
        "an open lot's holds are not its leader's high bid",
        "SELECT l.id FROM lots l WHERE l.status = 'open' AND l.mode = 'open' AND \
         COALESCE((SELECT SUM(h.amount) FROM holds h WHERE h.lot_id = l.id), 0) <> COALESCE(l.high_bid, 0)",
    ),
    (
        "an accepted bid on an open lot is not above every earlier one",
        "SELECT lot_id, seq, amount, earlier FROM (SELECT b.lot_id, b.seq, b.amount, MAX(b.amount) OVER \
         (PARTITION BY b.lot_id ORDER BY b.seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier \
         FROM bids b JOIN lots l ON l.id = b.lot_id WHERE l.mode = 'open') x WHERE amount <= earlier",
    ),
    (
        "a lot's bid count is not the number of its bids",
        "SELECT l.id, l.bid_count, (SELECT COUNT(*) FROM bids b WHERE b.lot_id = l.id) FROM lots l \
         WHERE l.bid_count <> (SELECT COUNT(*) FROM bids b WHERE b.lot_id = l.id)",
    ),
    (
        "a closed lot with bids has no settlement",
        "SELECT l.id FROM lots l WHERE l.status = 'closed' AND EXISTS (SELECT 1 FROM bids b WHERE b.lot_id = l.id) \
         AND l.settlement_entry_id IS NULL",
    ),
    (
        "a lot that did not close with a winner was settled",
        "SELECT l.id FROM lots l WHERE l.settlement_entry_id IS NOT NULL AND (l.status <> 'closed' OR l.winner_member_id IS NULL)",
    ),
    (
        "a settlement entry belongs to no lot, or to two",
        "SELECT e.id, (SELECT COUNT(*) FROM lots l WHERE l.settlement_entry_id = e.id) FROM entries e \
         WHERE e.kind = 'settlement' AND (SELECT COUNT(*) FROM lots l WHERE l.settlement_entry_id = e.id) <> 1",
    ),
    (
        "a winner was charged other than the lot's price",
        "SELECT l.id, l.price, p.amount FROM lots l JOIN accounts a ON a.pool_id = l.pool_id AND a.member_id = l.winner_member_id \
         JOIN postings p ON p.entry_id = l.settlement_entry_id AND p.account_id = a.id WHERE p.amount <> -l.price",
    ),
    (
        "an entry was reversed twice",
        "SELECT reverses FROM entries WHERE reverses IS NOT NULL GROUP BY reverses HAVING COUNT(*) > 1",
    ),
];

/// Every broken guarantee found, as a line each.
pub fn check(
    postgres: &Psql,
    ops: &[&LedgerOp],
    raids: &[&RaidRecord],
    bids: &[&AckedBid],
    tracks: &[&Track],
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for (what, sql) in NOTHING_EXPECTED {
        for row in postgres.query(sql)?.into_iter().take(5) {
            found.push(format!("{what}: {}", row.join(" ")));
        }
    }
    check_entries(postgres, ops, &mut found)?;
    check_raids(postgres, raids, &mut found)?;
    check_bids(postgres, bids, &mut found)?;
    check_streams(postgres, tracks, &mut found)?;
    Ok(found)
}

/// Each officer's request left as many entries as its outcome allows:
/// answered, exactly the one it was told of; refused, none; unknown, at
/// most one. Replays share their request's reason, so a key applied twice
/// shows as two entries of one reason.
fn check_entries(postgres: &Psql, ops: &[&LedgerOp], found: &mut Vec<String>) -> anyhow::Result<()> {
    let mut by_reason: HashMap<String, Vec<String>> = HashMap::new();
    for row in postgres.query("SELECT reason, id FROM entries WHERE reason LIKE 'chaos %'")? {
        if let [reason, id] = row.as_slice() {
            by_reason.entry(reason.clone()).or_default().push(id.clone());
        }
    }
    for op in ops {
        let entries = by_reason.get(op.reason()).map_or(&[][..], Vec::as_slice);
        let broken = match (&op.outcome, entries) {
            (Outcome::Ok(..), [one]) => op.entry() != Some(one.as_str()),
            (Outcome::Ok(..), _) => true,
            (Outcome::Refused(..), entries) => !entries.is_empty(),
            (Outcome::Unknown, entries) => entries.len() > 1,
        };
        if broken {
            found.push(format!(
                "{} {} ({:?}) left the entries {entries:?}",
                op.kind,
                op.key,
                op.outcome.code().unwrap_or(match op.outcome {
                    Outcome::Ok(..) => "answered",
                    _ => "unknown",
                })
            ));
        }
    }
    Ok(())
}

/// Each raid known for sure paid each attendee exactly what the rules give
/// for their final attendance, and nobody else anything, however many times
/// it was awarded (and asked again) around the faults.
fn check_raids(postgres: &Psql, raids: &[&RaidRecord], found: &mut Vec<String>) -> anyhow::Result<()> {
    let mut paid: HashMap<(String, String), i64> = HashMap::new();
    let sql = "SELECT e.raid_id, a.member_id, SUM(p.amount) FROM entries e JOIN postings p ON p.entry_id = e.id \
               JOIN accounts a ON a.id = p.account_id WHERE e.raid_id IS NOT NULL AND a.member_id IS NOT NULL \
               GROUP BY e.raid_id, a.member_id";
    for row in postgres.query(sql)? {
        if let [raid, member, amount] = row.as_slice() {
            paid.insert((raid.clone(), member.clone()), amount.parse()?);
        }
    }
    for raid in raids.iter().filter(|raid| raid.certain) {
        let mut owed: HashMap<&str, i64> =
            raid.attendance.iter().map(|(member, minutes)| (member.as_str(), raid.worth(*minutes))).collect();
        for ((paid_raid, member), amount) in &paid {
            if *paid_raid != raid.id {
                continue;
            }
            let due = owed.remove(member.as_str()).unwrap_or(0);
            if *amount != due {
                found.push(format!(
                    "raid {}: member {member} was paid {amount}, the attendance is worth {due}",
                    raid.id
                ));
            }
        }
        for (member, due) in owed.into_iter().filter(|(_, due)| *due != 0) {
            found.push(format!("raid {}: member {member} was paid nothing, the attendance is worth {due}", raid.id));
        }
    }
    Ok(())
}

/// Every accepted bid is in the lot's history exactly as its answer said.
fn check_bids(postgres: &Psql, bids: &[&AckedBid], found: &mut Vec<String>) -> anyhow::Result<()> {
    let mut stored: HashMap<String, (String, i64, i64)> = HashMap::new();
    for row in postgres.query("SELECT id, lot_id, seq, amount FROM bids")? {
        if let [id, lot, seq, amount] = row.as_slice() {
            stored.insert(id.clone(), (lot.clone(), seq.parse()?, amount.parse()?));
        }
    }
    for bid in bids {
        let told = (bid.lot.clone(), bid.seq, hundredths(&bid.amount).unwrap_or(-1));
        if stored.get(&bid.id) != Some(&told) {
            found.push(format!("accepted bid {} ({told:?}) is stored as {:?}", bid.id, stored.get(&bid.id)));
        }
    }
    Ok(())
}

/// What each subscriber received on a channel is the channel's log from
/// its start to the last offset received, each event once and in order
/// (unless the server told it to reload).
fn check_streams(postgres: &Psql, tracks: &[&Track], found: &mut Vec<String>) -> anyhow::Result<()> {
    let channels: Vec<String> = tracks.iter().map(|t| format!("'{}'", t.logged_as.replace('\'', "''"))).collect();
    if channels.is_empty() {
        return Ok(());
    }
    let sql = format!("SELECT channel, \"offset\" FROM events WHERE channel IN ({}) ORDER BY 1, 2", channels.join(","));
    let mut log: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in postgres.query(&sql)? {
        if let [channel, offset] = row.as_slice() {
            log.entry(channel.clone()).or_default().push(offset.parse()?);
        }
    }
    for track in tracks.iter().filter(|t| t.resets == 0 && !t.seen.is_empty()) {
        let expected: Vec<i64> =
            log.get(&track.logged_as).into_iter().flatten().copied().filter(|&o| o <= track.last()).collect();
        if expected != track.seen {
            let missing = expected.iter().filter(|o| !track.seen.contains(o)).count();
            found.push(format!(
                "{}: a subscriber received {} events up to offset {}, the log has {} ({missing} missed)",
                track.channel,
                track.seen.len(),
                track.last(),
                expected.len()
            ));
        }
    }
    Ok(())
}
