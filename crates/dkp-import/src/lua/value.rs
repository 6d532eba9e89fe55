//! Lua values as a record hands them to a reader: small trees built only for
//! the parts of a file a reader asked to collect, with accessors that say what
//! a reader expects (`text`, `number`, `table`) and return `None` otherwise.

use crate::amount::Decimal;

/// A table key: `[1]` and implicit array items are indexes, `["x"]` and `x` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Index(i64),
    Name(String),
    /// A non-integer number key (`[1.5]`).
    Number(Decimal),
    Bool(bool),
}

/// A scalar as the parser emits it; strings are still raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Nil,
    Bool(bool),
    Number(Decimal),
    Str(Vec<u8>),
}

/// A collected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Bool(bool),
    Number(Decimal),
    Str(String),
    Table(Table),
}

/// A table's entries in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub entries: Vec<(Key, Value)>,
}

impl Key {
    pub fn name(&self) -> Option<&str> {
        match self {
            Key::Name(name) => Some(name),
            _ => None,
        }
    }

    /// The key as text, as a reader shows it or matches it: `Realm`, `3`.
    pub fn to_text(&self) -> String {
        match self {
            Key::Index(index) => index.to_string(),
            Key::Name(name) => name.clone(),
            Key::Number(number) => number.to_string(),
            Key::Bool(flag) => flag.to_string(),
        }
    }
}

impl Value {
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn number(&self) -> Option<Decimal> {
        match self {
            Value::Number(number) => Some(*number),
            _ => None,
        }
    }

    /// A number, or a string holding a plain decimal (some addons store `"12"`).
    pub fn decimal(&self) -> Option<Decimal> {
        match self {
            Value::Number(number) => Some(*number),
            Value::Str(text) => Decimal::parse(text.trim()),
            _ => None,
        }
    }

    pub fn integer(&self) -> Option<i64> {
        self.decimal()?.to_i64()
    }

    pub fn boolean(&self) -> Option<bool> {
        match self {
            Value::Bool(flag) => Some(*flag),
            Value::Str(text) if text == "true" => Some(true),
            Value::Str(text) if text == "false" => Some(false),
            _ => None,
        }
    }

    pub fn table(&self) -> Option<&Table> {
        match self {
            Value::Table(table) => Some(table),
            _ => None,
        }
    }
}

impl Table {
    /// The value under a name key.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find(|(key, _)| key.name() == Some(name)).map(|(_, value)| value)
    }

    /// The text under a name key, trimmed, if not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name)?.text().map(str::trim).filter(|text| !text.is_empty())
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.get(name)?.table()
    }

    /// The values in file order, whatever their keys.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, value)| value)
    }
}
