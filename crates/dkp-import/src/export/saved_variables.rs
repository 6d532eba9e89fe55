//! Standings as the SavedVariables files the game's addons load at login,
//! written the way the game writes them (tab-indented `["key"] = value,`
//! lines), so the file can replace the addon's own in `WTF/.../SavedVariables`.
//!
//! Strings are Lua string literals that read back byte for byte: `"` and `\`
//! escaped, control characters as `\n`, `\r`, `\t` or `\ddd`, everything else
//! (UTF-8 included) as it is. Numbers are plain decimals (`120.5`, `-3`).

use std::fmt::Write;

use dkp_core::Points;

use super::{Standing, UNKNOWN_CLASS};
use crate::Class;

/// A MonolithDKP file: `MonDKP_DKPTable` with one entry per member
/// (`player`, `dkp`, `lifetime_gained`, `lifetime_spent` negative as the
/// addon keeps it, `class` as the game's token or `UNKNOWN`: the addon
/// colours rows by class and has no colour for none), and empty history and
/// loot tables.
pub fn monolith(standings: &[Standing<'_>]) -> String {
    let mut lua = String::from("MonDKP_DKPTable = {\n");
    for (index, standing) in standings.iter().enumerate() {
        let spent = Points::from_stored(standing.spent.hundredths().saturating_neg());
        let class = standing.class.map_or_else(|| UNKNOWN_CLASS.to_owned(), Class::token);
        let _ = write!(
            lua,
            "\t{{\n\t\t[\"player\"] = {},\n\t\t[\"class\"] = {},\n\t\t[\"dkp\"] = {},\n\
             \t\t[\"previous_dkp\"] = {},\n\t\t[\"lifetime_gained\"] = {},\n\t\t[\"lifetime_spent\"] = {},\n\
             \t}}, -- [{}]\n",
            lua_string(standing.name),
            lua_string(&class),
            lua_number(standing.balance),
            lua_number(standing.balance),
            lua_number(standing.earned),
            lua_number(spent),
            index + 1
        );
    }
    lua.push_str("}\nMonDKP_DKPHistory = {\n\t[\"seed\"] = 0,\n}\nMonDKP_Loot = {\n\t[\"seed\"] = 0,\n}\n");
    lua
}

/// A WebDKP file: `WebDKP_DkpTable[name]` with the balance as `dkp_1` of
/// the one table `WebDKP_Tables` names (`table`, id 1) and the class's
/// English name where known (the addon fills in the rest when it sees the
/// player), and an empty log.
pub fn webdkp(standings: &[Standing<'_>], table: &str) -> String {
    let mut lua = String::from("WebDKP_DkpTable = {\n");
    for standing in standings {
        let _ = write!(
            lua,
            "\t[{}] = {{\n\t\t[\"dkp_1\"] = {},\n",
            lua_string(standing.name),
            lua_number(standing.balance)
        );
        if let Some(class) = standing.class {
            let _ = writeln!(lua, "\t\t[\"class\"] = {},", lua_string(&class.english()));
        }
        lua.push_str("\t\t[\"Selected\"] = false,\n\t},\n");
    }
    let _ = write!(
        lua,
        "}}\nWebDKP_Tables = {{\n\t[{}] = {{\n\t\t[\"id\"] = 1,\n\t}},\n}}\nWebDKP_Log = {{\n}}\n",
        lua_string(table)
    );
    lua
}

/// `text` as a double-quoted Lua string literal.
pub fn lua_string(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for character in text.chars() {
        match character {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            // Three digits always, so a digit that follows is not read into the escape.
            control if control.is_ascii_control() => {
                let _ = write!(literal, "\\{:03}", u32::from(control));
            }
            other => literal.push(other),
        }
    }
    literal.push('"');
    literal
}

/// An amount as a Lua number: its decimals without trailing zeros.
fn lua_number(points: Points) -> String {
    let text = points.to_string();
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
