//! Refusals and the first answer to a request, as idempotency keeps it.
//!
//! A request sent again under its `Idempotency-Key` gets its first answer
//! again, byte for byte. What is kept is the answer's record (the entry, the
//! bid and its lot, or the refusal), written in the transaction of the
//! change; `http::wire` renders it, the same way for the first answer and
//! for every replay.

use dkp_core::auction::BidError;
use serde::{Deserialize, Serialize};

use super::{BidView, Code, Entry, LotView};

/// Which kind of refusal: what the client got wrong, or what the state of
/// things does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    NotFound,
    /// The request is malformed or names what cannot be (422).
    Invalid,
    /// The request conflicts with the current state (409).
    Conflict,
}

/// A request refused for a reason of its own, which would be the same if it
/// came again: a stable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub kind: RefusalKind,
    #[serde(with = "code_text")]
    pub code: Code,
    pub message: String,
}

text_form!(code_text, crate::model::Code, "code");

impl Refusal {
    pub fn not_found() -> Refusal {
        Refusal { kind: RefusalKind::NotFound, code: Code::NotFound, message: "not found".to_owned() }
    }

    pub fn invalid(code: Code, message: impl Into<String>) -> Refusal {
        Refusal { kind: RefusalKind::Invalid, code, message: message.into() }
    }

    pub fn conflict(code: Code, message: impl Into<String>) -> Refusal {
        Refusal { kind: RefusalKind::Conflict, code, message: message.into() }
    }
}

impl From<&BidError> for Refusal {
    fn from(error: &BidError) -> Refusal {
        let code = match error {
            BidError::LotClosed => return Refusal::conflict(Code::LotClosed, error.to_string()),
            BidError::TooLow { .. } => Code::BidTooLow,
            BidError::InsufficientPoints { .. } => Code::InsufficientPoints,
            BidError::Amount(_) => Code::InvalidAmount,
        };
        Refusal::invalid(code, error.to_string())
    }
}

/// The first answer to a request that moved (or would have moved) points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A ledger entry written.
    Entry(Entry),
    /// A bid accepted, with its lot as the bid's batch left it.
    Bid {
        bid: BidView,
        lot: LotView,
    },
    Refused(Refusal),
    /// A raid's award that found nothing to pay or take back: no entry.
    NothingToAward,
    /// An answer kept, already rendered, before answers were kept as
    /// records: replayed as it was.
    Rendered {
        status: u16,
        body: String,
    },
}

impl Answer {
    /// The form kept in the idempotency record.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a kept answer back; `None` if it is not one.
    pub fn decode(text: &str) -> Option<Answer> {
        serde_json::from_str(text).ok()
    }
}
