//! A reader of the Lua table syntax that World of Warcraft writes its
//! SavedVariables in. Files are parsed, never run.
//!
//! Three layers, each usable alone:
//! - `lexer`: tokens with their lines, every string escape and comment form;
//! - `events`: a pull parser (`Events::next_event`) with an explicit stack and
//!   a depth limit, so no input can overflow the call stack;
//! - `walk`: a visitor that picks records by path (`MonDKP_DKPHistory`, then
//!   each entry) and receives each as a small `Value` while the rest of the
//!   file streams past.
//!
//! Encoding: table keys must be UTF-8 wherever they are; string values are
//! checked only when a reader collects them, and an invalid one is an error
//! naming its line (never replaced silently: a name changed by lossy decoding
//! could merge two players).

mod events;
mod lexer;
mod value;
mod walk;

pub use events::{Event, Events, MAX_DEPTH};
pub use value::{Key, Scalar, Table, Value};
pub use walk::{MAX_RECORD_VALUES, Step, Visitor, walk};

#[cfg(test)]
mod tests;
