//! The wire: how every answer and event looks to a client, one function per
//! shape. The HTTP handlers, the replay of a kept idempotent answer and the
//! WebSocket (live frames and replays from the log) all render through here,
//! so a replayed answer is the first one byte for byte and an event reads the
//! same live and replayed.
//!
//! Points are strings with two decimals, times RFC 3339 in UTC, images URLs
//! under the configured public base; a sealed lot's high bid and leader stay
//! hidden until it closes.

use axum::extract::ws::Utf8Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::blobs::PublicUrls;
use dkp_core::AccountRef;

use crate::model::{
    Answer, AttendanceRate, Entry, Event, Guild, ImportReport, Job, Loot, LotView, Membership, RaidPage, Standing,
};

/// Renders records for clients; holds what rendering needs (where images are served).
pub struct Wire {
    urls: PublicUrls,
}

impl Wire {
    pub fn new(urls: PublicUrls) -> Wire {
        Wire { urls }
    }

    /// Where the images the answers link to live, when not on this service.
    pub fn image_origin(&self) -> Option<&str> {
        self.urls.foreign_origin()
    }

    /// A guild, with `logo_url` (null without a logo).
    pub fn guild(&self, guild: &Guild) -> Value {
        json!({
            "id": guild.id,
            "slug": guild.slug,
            "name": guild.name,
            "logo_url": guild.logo_key.as_deref().map(|key| self.urls.of(key)),
        })
    }

    /// A guild as one of the caller's: with their role and member id.
    pub fn membership(&self, membership: &Membership) -> Value {
        let mut guild = self.guild(&membership.guild);
        guild["role"] = json!(membership.role.as_str());
        guild["member_id"] = json!(membership.member_id);
        guild
    }

    /// A lot as everyone in the guild may see it: in sealed modes the high
    /// bid and the leader stay hidden until the close. `icon_url` is null
    /// without an icon.
    pub fn lot(&self, lot: &LotView) -> Value {
        let mut shown = json!({
            "id": lot.id,
            "pool_id": lot.pool_id,
            "item": {"name": lot.item_name, "game_item_id": lot.game_item_id},
            "mode": lot.mode.as_str(),
            "status": lot.status.as_str(),
            "min_bid": lot.min_bid.to_string(),
            "increment": lot.increment.to_string(),
            "anti_snipe_s": lot.anti_snipe_s,
            "extend_s": lot.extend_s,
            "ends_at": lot.ends_at,
            "created_at": lot.created_at,
            "bid_count": lot.bid_count,
            "seq": lot.seq,
            "icon_url": lot.icon_key.as_deref().map(|key| self.urls.of(key)),
            "raid_id": lot.raid_id,
        });
        let secret = lot.is_secret();
        let fields = [
            ("high_bid", lot.high_bid.filter(|_| !secret).map(|p| json!(p.to_string()))),
            ("leader_member_id", lot.leader_member_id.filter(|_| !secret).map(|id| json!(id))),
            ("winner_member_id", lot.winner_member_id.map(|id| json!(id))),
            ("price", lot.price.map(|p| json!(p.to_string()))),
            ("settlement_entry_id", lot.settlement_entry_id.map(|id| json!(id))),
            ("cancel_reason", lot.cancel_reason.clone().map(Value::String)),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                shown[name] = value;
            }
        }
        shown
    }

    /// A raid's page: the raid, its attendance, kills and lots, and what its
    /// entries have paid: in all (`awarded`) and to each member (`awards`).
    pub fn raid_page(&self, page: &RaidPage) -> Value {
        let mut raid = json!(page.raid);
        let mut total = dkp_core::Points::ZERO;
        let awards: Vec<Value> = page
            .awarded
            .iter()
            .map(|(member_id, amount)| {
                total = total.checked_add(*amount).unwrap_or(total);
                json!({"member_id": member_id, "amount": amount.to_string()})
            })
            .collect();
        raid["attendance"] = json!(page.attendance);
        raid["kills"] = json!(page.kills);
        raid["lots"] = page.lots.iter().map(|lot| self.lot(lot)).collect();
        raid["awarded"] = json!(total.to_string());
        raid["awards"] = json!(awards);
        raid
    }

    /// One member's attendance over a pool's last raids.
    pub fn attendance_rate(&self, rate: &AttendanceRate) -> Value {
        json!({"member_id": rate.member_id, "raids": rate.raids, "attended": rate.attended, "percent": rate.percent()})
    }

    /// An item won, as the loot history shows it.
    pub fn loot(&self, loot: &Loot) -> Value {
        json!({
            "lot_id": loot.lot_id,
            "pool_id": loot.pool_id,
            "item": {"name": loot.item_name, "game_item_id": loot.game_item_id},
            "winner_member_id": loot.winner_member_id,
            "price": loot.price.to_string(),
            "closed_at": loot.closed_at,
            "raid_id": loot.raid_id,
        })
    }

    /// `{"entry": …}`: a ledger entry.
    pub fn entry(&self, entry: &Entry) -> Value {
        json!({ "entry": entry })
    }

    /// The answer to a point-moving request, first or replayed: its status and body.
    pub fn answer(&self, answer: &Answer) -> (StatusCode, String) {
        match answer {
            Answer::Entry(entry) => (StatusCode::CREATED, self.entry(entry).to_string()),
            Answer::NothingToAward => (StatusCode::OK, json!({"entry": null}).to_string()),
            Answer::Bid { bid, lot } => (StatusCode::CREATED, json!({"bid": bid, "lot": self.lot(lot)}).to_string()),
            Answer::Refused(refusal) => {
                let body = json!({"error": {"code": refusal.code.as_str(), "message": refusal.message}});
                (super::error::refused(refusal), body.to_string())
            }
            Answer::Rendered { status, body } => {
                (StatusCode::from_u16(*status).unwrap_or(StatusCode::OK), body.clone())
            }
        }
    }

    /// A job as clients see it.
    pub fn job(&self, job: &Job) -> Value {
        json!({
            "id": job.id,
            "kind": job.kind,
            "status": job.state,
            "attempts": job.attempts,
            "run_at": job.run_at,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "result": job.result,
            "error": job.last_error,
        })
    }

    /// An event as the WebSocket sends it. A lot in its data is shown as
    /// `lot` shows it (events logged before lots were kept as records are
    /// shown as they were written).
    pub fn event(&self, event: &Event) -> Value {
        let mut data = event.data.clone();
        if let Some(lot) = data.get("lot").and_then(|lot| serde_json::from_value::<LotView>(lot.clone()).ok()) {
            data["lot"] = self.lot(&lot);
        }
        json!({
            "type": "event",
            "channel": public_channel(&event.channel),
            "offset": event.offset,
            "event": event.name.as_str(),
            "data": data,
        })
    }

    /// The text frame of an event.
    pub fn frame(&self, event: &Event) -> Utf8Bytes {
        Utf8Bytes::from(self.event(event).to_string())
    }
}

/// The name a client uses for a channel: its own `user:` channel is `me`.
pub fn public_channel(channel: &str) -> &str {
    if channel.starts_with("user:") { "me" } else { channel }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventName;

    fn wire() -> Wire {
        Wire::new(PublicUrls::default())
    }

    #[test]
    fn a_users_own_channel_is_called_me() {
        let event =
            Event { channel: "user:42".into(), offset: 3, name: EventName::BalanceChanged, data: json!({"seq": 3}) };
        let message = wire().event(&event);
        assert_eq!(message["channel"], "me");
        assert_eq!((message["event"].as_str(), message["offset"].as_i64()), (Some("balance_changed"), Some(3)));
    }

    #[test]
    fn an_event_logged_in_the_older_shape_is_sent_as_it_was() {
        let data = json!({"lot": {"id": "x", "icon_url": "/blobs/a"}});
        let event = Event { channel: "lot:1".into(), offset: 9, name: EventName::LotClosed, data: data.clone() };
        assert_eq!(wire().event(&event)["data"], data);
    }
}

/// The report of an import, as the API answers it and `dkp import --json` prints it.
pub fn import_report(report: &ImportReport, already_imported: bool) -> Value {
    json!({
        "already_imported": already_imported,
        "format": report.format,
        "dry_run": report.dry_run,
        "members": {"created": report.roster.members_created, "matched": report.roster.members_matched},
        "characters": {"created": report.roster.characters_created},
        "raids": report.raids,
        "entries": report.entries,
        "balances": report.balances,
        "stated": report.stated,
        "mismatches": report.mismatches,
        "warnings": report.warnings,
        "time_zone": report.time_zone,
    })
}

/// The header of a standings export in CSV: the generic CSV import reads it back.
pub const STANDINGS_CSV_HEADER: &str = "name,balance,earned,spent,active\r\n";

/// One member's row of a standings export in CSV.
pub fn standing_csv(standing: &Standing) -> String {
    format!(
        "{},{},{},{},{}\r\n",
        csv_field(&standing.name),
        standing.balance,
        standing.earned,
        standing.spent,
        standing.active
    )
}

/// One member's row of a standings export in JSON.
pub fn standing_export(standing: &Standing) -> Value {
    json!({
        "member_id": standing.member_id,
        "name": standing.name,
        "balance": standing.balance.to_string(),
        "earned": standing.earned.to_string(),
        "spent": standing.spent.to_string(),
        "active": standing.active,
    })
}

/// The header of a ledger export in CSV: one row per posting.
pub const ENTRIES_CSV_HEADER: &str = "entry_id,created_at,kind,reason,reverses,account,member_id,name,amount\r\n";

/// The rows of one entry in a ledger export in CSV, one per posting; `name`
/// gives a member's name by id.
pub fn entry_csv(entry: &Entry, name: impl Fn(&uuid::Uuid) -> Option<String>) -> String {
    let created_at = serde_json::to_value(entry.created_at).ok();
    let created_at = created_at.as_ref().and_then(Value::as_str).unwrap_or_default();
    let reverses = entry.reverses.map(|id| id.to_string()).unwrap_or_default();
    let mut rows = String::new();
    for posting in &entry.postings {
        let (account, member, member_name) = match &posting.account {
            AccountRef::Member(id) => ("member", id.to_string(), name(id).unwrap_or_default()),
            AccountRef::System(system) => (system.as_str(), String::new(), String::new()),
        };
        rows.push_str(&format!(
            "{},{created_at},{},{},{reverses},{account},{member},{},{}\r\n",
            entry.id,
            entry.kind.as_str(),
            csv_field(&entry.reason),
            csv_field(&member_name),
            posting.amount
        ));
    }
    rows
}

/// A CSV field: quoted (its quotes doubled) when it holds a separator, a
/// quote, a line break or spaces at either end.
fn csv_field(text: &str) -> String {
    let plain = !text.contains([',', '"', '\n', '\r', ';']) && text.trim() == text;
    if plain { text.to_owned() } else { format!("\"{}\"", text.replace('"', "\"\"")) }
}
