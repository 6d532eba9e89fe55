//! An EQdkp Plus export's players turned into members.
//!
//! With twinks (`<with_twink>1`), a player whose `main_id` is its own `id` is
//! a main; the others are its twinks and become characters of the main's
//! member, whose stated balance is the main's `points_current_with_twink`
//! (EQdkp's sum of `points_current` over the main and its twinks; a
//! disagreement is warned about). A twink whose main is not in the file
//! stands alone with its own `points_current`. Without twinks, every player
//! is a member with `points_current`.
//!
//! The pool read is the multidkp pool the `table` option names (by id or
//! name), else the only one, else the first with a warning.

use std::collections::HashMap;

use dkp_core::Points;

use super::{Export, PendingPlayer, PendingPoints};
use crate::amount::magnitude;
use crate::builder::Builder;
use crate::error::{ErrorKind, ImportError};
use crate::model::PlayerRef;
use crate::time::{At, LocalTime, TimeZone, parse_clock, parse_dotted_date};
use crate::{Decimal, Format, Options};

pub(super) fn build(export: Export, options: &Options) -> Result<Builder, ImportError> {
    let mut builder = Builder::new(Format::EqdkpXml, TimeZone::Utc);
    builder.exported_at = exported_at(&export);
    let pool = choose_pool(&export, options, &mut builder)?;
    let with_twink = match export.with_twink.as_deref() {
        Some("1") => true,
        Some("0") => false,
        _ => {
            builder.warn("the export does not say whether twinks are folded into mains; every player is read alone");
            false
        }
    };
    if with_twink {
        folded(&mut builder, &export.players, pool.as_deref())?;
    } else {
        for player in &export.players {
            let member = member(&mut builder, player)?;
            if let Some(points) = points_for(player, pool.as_deref()) {
                state(&mut builder, member, player.line, &points.current, &points.earned, &points.spent)?;
            }
        }
    }
    Ok(builder)
}

/// Mains with their twinks as characters.
fn folded(builder: &mut Builder, players: &[PendingPlayer], pool: Option<&str>) -> Result<(), ImportError> {
    let by_id: HashMap<&str, usize> = players.iter().enumerate().map(|(index, p)| (p.id.as_str(), index)).collect();
    let is_main = |player: &PendingPlayer| player.main_id.is_empty() || player.main_id == player.id;
    let main_of =
        |player: &PendingPlayer| by_id.get(player.main_id.as_str()).copied().filter(|main| is_main(&players[*main]));
    let mut refs: Vec<Option<PlayerRef>> = vec![None; players.len()];
    let mut orphans = Vec::new();
    for (index, player) in players.iter().enumerate() {
        let standing_alone = !is_main(player) && main_of(player).is_none();
        if !is_main(player) && !standing_alone {
            continue;
        }
        let member = member(builder, player)?;
        refs[index] = Some(member);
        let Some(points) = points_for(player, pool) else { continue };
        if standing_alone {
            orphans.push(player.name.as_str());
            state(builder, member, player.line, &points.current, &points.earned, &points.spent)?;
        } else {
            let (current, earned, spent) =
                (&points.current_with_twink, &points.earned_with_twink, &points.spent_with_twink);
            state(builder, member, player.line, current, earned, spent)?;
        }
    }
    let mut sums: HashMap<usize, Points> = HashMap::new();
    for (index, player) in players.iter().enumerate() {
        let main = if is_main(player) { Some(index) } else { main_of(player) };
        let (Some(main), Some(points)) = (main, points_for(player, pool)) else { continue };
        let current = amount(builder, &points.current, player.line)?;
        let sum = sums.entry(main).or_insert(Points::ZERO);
        *sum = sum.checked_add(current).unwrap_or(*sum);
        if main != index {
            let twink = member(builder, player)?;
            builder.set_main(twink, refs[main].unwrap_or(twink));
        }
    }
    check_sums(builder, players, pool, &sums)?;
    if !orphans.is_empty() {
        builder.warn(format!("twinks whose main is not in the export are read alone: {}", orphans.join(", ")));
    }
    Ok(())
}

/// Warns where a main's total with twinks is not the sum of its characters' points.
fn check_sums(
    builder: &mut Builder,
    players: &[PendingPlayer],
    pool: Option<&str>,
    sums: &HashMap<usize, Points>,
) -> Result<(), ImportError> {
    let mut differing = Vec::new();
    for (index, sum) in sums {
        let main = &players[*index];
        let Some(points) = points_for(main, pool) else { continue };
        let stated = amount(builder, &points.current_with_twink, main.line)?;
        if stated != *sum {
            differing.push(format!("'{}' states {stated}, its characters sum to {sum}", main.name));
        }
    }
    differing.sort();
    if !differing.is_empty() {
        builder.warn(format!(
            "{} mains' points_current_with_twink differ from the sum of their characters' points_current (the stated value is used): {}",
            differing.len(),
            differing.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    Ok(())
}

fn member(builder: &mut Builder, player: &PendingPlayer) -> Result<PlayerRef, ImportError> {
    let member = builder.player(&player.name, player.line)?;
    let class = builder.class(&player.class);
    builder.set_class(member, class);
    Ok(member)
}

fn state(
    builder: &mut Builder,
    member: PlayerRef,
    line: u64,
    current: &str,
    earned: &str,
    spent: &str,
) -> Result<(), ImportError> {
    let balance = amount(builder, current, line)?;
    let earned = optional_amount(builder, earned, line)?;
    let spent = optional_amount(builder, spent, line)?.map(magnitude);
    let stated = builder.stated(member, balance);
    (stated.earned, stated.spent) = (earned, spent);
    Ok(())
}

/// An amount; EQdkp writes a missing one as an empty element.
fn amount(builder: &mut Builder, text: &str, line: u64) -> Result<Points, ImportError> {
    Ok(optional_amount(builder, text, line)?.unwrap_or(Points::ZERO))
}

fn optional_amount(builder: &mut Builder, text: &str, line: u64) -> Result<Option<Points>, ImportError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    builder.points_text(text, line).map(Some)
}

fn points_for<'a>(player: &'a PendingPlayer, pool: Option<&str>) -> Option<&'a PendingPoints> {
    let pool = pool?;
    let only_unnamed = match player.points.as_slice() {
        [only] if only.pool.is_empty() => Some(only),
        _ => None,
    };
    player.points.iter().find(|points| points.pool == pool).or(only_unnamed)
}

fn choose_pool(export: &Export, options: &Options, builder: &mut Builder) -> Result<Option<String>, ImportError> {
    let mut ids: Vec<String> = export.pools.iter().map(|(id, _)| id.clone()).filter(|id| !id.is_empty()).collect();
    for points in export.players.iter().flat_map(|player| &player.points) {
        if !points.pool.is_empty() && !ids.contains(&points.pool) {
            ids.push(points.pool.clone());
        }
    }
    let name_of = |id: &str| export.pools.iter().find(|(known, _)| known == id).map(|(_, name)| name.as_str());
    let listed = || {
        let shown: Vec<String> = ids.iter().map(|id| format!("{id} '{}'", name_of(id).unwrap_or(""))).collect();
        shown.join(", ")
    };
    if let Some(wanted) = options.table.as_deref().map(str::trim) {
        let found =
            ids.iter().find(|id| *id == wanted || name_of(id).is_some_and(|name| name.eq_ignore_ascii_case(wanted)));
        return match found {
            Some(id) => Ok(Some(id.clone())),
            None => Err(ImportError::whole_file(ErrorKind::WrongShape(format!(
                "no multidkp pool {wanted:?} in the export (it holds: {})",
                listed()
            )))),
        };
    }
    if ids.len() > 1 {
        builder.warn(format!("the export holds multidkp pools {}; pool {} was read", listed(), ids[0]));
    }
    let any_points = export.players.iter().any(|player| !player.points.is_empty());
    Ok(ids.into_iter().next().or_else(|| any_points.then(String::new)))
}

/// The export's own time: its unix `timestamp`, else its `dd.mm.yy H:i:s` date.
fn exported_at(export: &Export) -> Option<At> {
    if let Some(seconds) = export.timestamp.as_deref().and_then(Decimal::parse).and_then(Decimal::to_i64) {
        return Some(At::Unix(seconds));
    }
    let (date, time) = export.date.as_deref()?.split_once(' ').unwrap_or((export.date.as_deref()?, "0:00:00"));
    let (year, month, day) = parse_dotted_date(date)?;
    let (hour, minute, second) = parse_clock(time)?;
    LocalTime::new(year, month, day, hour, minute, second).map(At::Local)
}
