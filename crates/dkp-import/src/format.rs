//! One reader per tool. Each streams its file and fills a `Builder`; the
//! pieces they share (item links, the Lua records' fields) live here.

pub mod eqdkp;
pub mod gargul;
pub mod generic_csv;
pub mod monolith;
pub mod mrt;
pub mod rclc;
pub mod webdkp;

use dkp_core::Points;

use crate::error::{ImportError, invalid};
use crate::lua::{Table, Value};
use crate::model::{Item, Posting, Recipient};
use crate::time::At;

/// An item from a game link (`|cffa335ee|Hitem:18842::...|h[Staff of Dominance]|h|r`),
/// a bracketed name (`[Scarlet Kris]`) or plain text.
pub(crate) fn item_from_link(text: &str, id: Option<u32>) -> Item {
    let name = match (text.find('['), text.rfind(']')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    let linked_id = text
        .split_once("item:")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok());
    Item { name: name.trim().to_owned(), id: id.or(linked_id) }
}

/// The postings of an item bought for `price`: the price leaves the buyer's
/// balance; an item for free, or given to no player, moves nothing.
pub(crate) fn charge(to: Recipient, price: Points, line: u64) -> Result<Vec<Posting>, ImportError> {
    match to {
        Recipient::Player(player) if price != Points::ZERO => {
            let amount = price.checked_neg().map_err(|_| invalid(line, "a price is too large"))?;
            Ok(vec![Posting { player, amount }])
        }
        _ => Ok(Vec::new()),
    }
}

/// A unix time under a name key, when it is a whole number.
pub(crate) fn unix_time(table: &Table, name: &str) -> Option<At> {
    table.get(name).and_then(Value::integer).map(At::Unix)
}

/// The record as a table, or an error naming its line.
pub(crate) fn record_table<'a>(value: &'a Value, line: u64, what: &str) -> Result<&'a Table, ImportError> {
    value.table().ok_or_else(|| invalid(line, format!("{what} is not a table")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_links_give_name_and_id() {
        let item = item_from_link("|cffa335ee|Hitem:18842::::::::60:::::::|h[Staff of Dominance]|h|r", None);
        assert_eq!(item, Item { name: "Staff of Dominance".into(), id: Some(18842) });
        assert_eq!(item_from_link("[Scarlet Kris]", Some(5267)), Item { name: "Scarlet Kris".into(), id: Some(5267) });
        assert_eq!(
            item_from_link("Onyxia Hide Backpack", None),
            Item { name: "Onyxia Hide Backpack".into(), id: None }
        );
    }
}
