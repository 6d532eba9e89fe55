//! Standings written back in the shapes this crate reads, so a pool can go
//! back to EQdkp Plus (`eqdkp_xml`) or into the game's addons as their
//! SavedVariables (`monolith`, `webdkp`, in `saved_variables`). Each file,
//! read back by the reader of its format, gives the same names and balances:
//! the tests below check it.
//!
//! Only balances and lifetime totals are written, no history: a file
//! without history states its balances and has nothing to rebuild them
//! from, so reading it back reports no mismatches. Amounts are written
//! from `Points` as exact decimals, never through a float.
mod saved_variables;

use std::fmt::Write;

use dkp_core::Points;

use crate::Class;
use crate::time::LocalTime;

pub use saved_variables::{lua_string, monolith, webdkp};

/// One member's standing, as an export writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing<'a> {
    pub name: &'a str,
    pub balance: Points,
    /// Points received over the member's life in the pool.
    pub earned: Points,
    /// Points paid for loot over the member's life in the pool (not negative).
    pub spent: Points,
    /// The class of the member's main character, where the guild knows it.
    pub class: Option<Class>,
}

/// The class MonolithDKP writes (and colours grey) for a player whose class it does not know.
pub const UNKNOWN_CLASS: &str = "UNKNOWN";

/// An EQdkp Plus points export (`<response>`) of one multidkp pool named
/// `pool`, every member a main without twinks, exported at the unix time
/// `exported_at` (written as EQdkp writes it: a `dd.mm.yy H:i:s` date in
/// UTC and the `timestamp`).
pub fn eqdkp_xml(standings: &[Standing<'_>], pool: &str, exported_at: i64) -> String {
    let at = LocalTime::from_unix(exported_at);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n\t<info>\n");
    let _ = write!(
        xml,
        "\t\t<with_twink>0</with_twink>\n\t\t<date>{:02}.{:02}.{:02} {:02}:{:02}:{:02}</date>\n\
         \t\t<timestamp>{exported_at}</timestamp>\n\t\t<total_players>{}</total_players>\n\
         \t\t<total_items>0</total_items>\n\t</info>\n\t<players>\n",
        at.day,
        at.month,
        at.year.rem_euclid(100),
        at.hour,
        at.minute,
        at.second,
        standings.len()
    );
    for (index, standing) in standings.iter().enumerate() {
        eqdkp_player(&mut xml, index + 1, standing);
    }
    let _ = write!(
        xml,
        "\t</players>\n\t<multidkp_pools>\n\t\t<multidkp_pool>\n\t\t\t<id>1</id>\n\t\t\t<name>{}</name>\n\
         \t\t\t<desc></desc>\n\t\t</multidkp_pool>\n\t</multidkp_pools>\n\t<status>1</status>\n</response>\n",
        quick_xml::escape::escape(pool)
    );
    xml
}

/// One `<player>`: its own main, its points those of multidkp pool 1.
fn eqdkp_player(xml: &mut String, id: usize, standing: &Standing<'_>) {
    let name = quick_xml::escape::escape(standing.name);
    let class = standing.class.map(Class::english).unwrap_or_default();
    let (balance, earned, spent) = (standing.balance, standing.earned, standing.spent);
    // EQdkp's current = earned - spent + adjustment; the rest (decay, corrections) is the adjustment.
    let adjustment = Points::from_stored(
        balance.hundredths().saturating_sub(earned.hundredths()).saturating_add(spent.hundredths()),
    );
    let _ = write!(
        xml,
        "\t\t<player>\n\t\t\t<id>{id}</id>\n\t\t\t<name>{name}</name>\n\t\t\t<main_id>{id}</main_id>\n\
         \t\t\t<main_name>{name}</main_name>\n\t\t\t<class_name>{class}</class_name>\n\t\t\t<points>\n\
         \t\t\t\t<multidkp_points>\n\t\t\t\t\t<multidkp_id>1</multidkp_id>\n"
    );
    for (field, value) in [
        ("points_current", balance),
        ("points_earned", earned),
        ("points_spent", spent),
        ("points_adjustment", adjustment),
    ] {
        let _ = write!(
            xml,
            "\t\t\t\t\t<{field}>{value}</{field}>\n\t\t\t\t\t<{field}_with_twink>{value}</{field}_with_twink>\n"
        );
    }
    xml.push_str("\t\t\t\t</multidkp_points>\n\t\t\t</points>\n\t\t\t<items/>\n\t\t</player>\n");
}

#[cfg(test)]
mod tests;
