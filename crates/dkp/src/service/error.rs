//! `Error`: how a use case can fail, in the service's own terms. The
//! transport maps each to what its clients see (`http::ApiError` to statuses
//! and the contract's envelope); internal causes are logged there, never shown.
//!
//! A `Refused` request is the client's own doing and would be refused again
//! the same way, so it is also the first answer kept under an idempotency
//! key. Everything else (contention, an outside service away, a fault) is of
//! the moment.

use dkp_core::AmountError;
use dkp_core::auction::BidError;
use dkp_core::ledger::LedgerError;
use dkp_core::names::InvalidField;
use uuid::Uuid;

use crate::blobs::ImageError;
use crate::model::{Code, Refusal};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication required")]
    Unauthenticated,
    /// A member whose role does not allow the action.
    #[error("your role in this guild does not allow this")]
    Forbidden,
    #[error("{}", .0.message)]
    Refused(Refusal),
    /// An upload larger than the service keeps.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// An upload that names no image type we keep.
    #[error("{0}")]
    UnsupportedImage(ImageError),
    #[error("too many requests")]
    RateLimited { retry_after_s: u64 },
    /// The write lost to concurrent writers on every attempt; trying again helps.
    #[error("too many concurrent changes to the same points; try again")]
    Busy,
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn not_found() -> Error {
        Error::Refused(Refusal::not_found())
    }

    pub fn invalid(code: Code, message: impl Into<String>) -> Error {
        Error::Refused(Refusal::invalid(code, message))
    }

    pub fn invalid_field(message: impl Into<String>) -> Error {
        Error::invalid(Code::InvalidField, message)
    }

    pub fn conflict(code: Code) -> Error {
        Error::Refused(Refusal::conflict(code, code.conflict_message()))
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Error {
        Error::Internal(cause.into())
    }

    /// Whether this is a refusal with `code`.
    pub fn is(&self, code: Code) -> bool {
        matches!(self, Error::Refused(refusal) if refusal.code == code)
    }
}

/// The refusal a store error stands for when it is the request's own fault
/// and would be the same if the request came again; `None` for faults of the
/// moment (contention, the database).
pub fn refusal(error: &StoreError) -> Option<Refusal> {
    Some(match error {
        StoreError::NotFound => Refusal::not_found(),
        StoreError::Conflict(code) => Refusal::conflict(*code, code.conflict_message()),
        StoreError::UnknownReference(field) => Refusal::invalid(Code::UnknownReference, unknown(field)),
        StoreError::Invalid(code, message) => Refusal::invalid(*code, *message),
        StoreError::Ledger(error) => return ledger_refusal(error.clone()).ok(),
        _ => return None,
    })
}

/// What an unknown reference names nothing of.
fn unknown(field: &str) -> String {
    match field {
        "pool_id" => "pool_id: no such pool in this guild".to_owned(),
        "raid_id" => "raid_id: no such raid in this pool of this guild".to_owned(),
        _ => format!("{field}: no such member or user in this guild"),
    }
}

fn key_reused() -> Refusal {
    Refusal::invalid(Code::IdempotencyKeyReused, "this Idempotency-Key was already used with a different request")
}

fn ledger_refusal(error: LedgerError<Uuid>) -> std::result::Result<Refusal, Error> {
    Ok(match error {
        // Only the amount asked for: what is available would tell others
        // what the member's sealed bids hold.
        LedgerError::InsufficientPoints { member, needed, .. } => {
            Refusal::invalid(Code::InsufficientPoints, format!("member {member} does not have {needed} available"))
        }
        LedgerError::BalanceOutOfRange { .. } => Refusal::invalid(Code::InvalidAmount, error.to_string()),
        LedgerError::Amount(error) => amount_refusal(&error),
        LedgerError::NotPositive | LedgerError::Zero => Refusal::invalid(Code::InvalidAmount, error.to_string()),
        LedgerError::Unbalanced => return Err(Error::internal(anyhow::anyhow!("unbalanced postings"))),
        other => Refusal::invalid(Code::InvalidField, other.to_string()),
    })
}

fn amount_refusal(error: &AmountError) -> Refusal {
    Refusal::invalid(Code::InvalidAmount, error.to_string())
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Error {
        if let StoreError::Ledger(ledger) = &error {
            return ledger_refusal(ledger.clone()).map_or_else(|e| e, Error::Refused);
        }
        if let Some(refusal) = refusal(&error) {
            return Error::Refused(refusal);
        }
        match error {
            StoreError::Forbidden => Error::Forbidden,
            // The key stays with its first request: not an answer to keep under it.
            StoreError::IdempotencyKeyReused => Error::Refused(key_reused()),
            other if crate::store::is_contention(&other) => Error::Busy,
            StoreError::Overloaded => Error::Busy,
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                tracing::warn!("no database connection came free in time");
                Error::Unavailable("database")
            }
            other => Error::Internal(other.into()),
        }
    }
}

impl From<LedgerError<Uuid>> for Error {
    fn from(error: LedgerError<Uuid>) -> Error {
        ledger_refusal(error).map_or_else(|e| e, Error::Refused)
    }
}

impl From<BidError> for Error {
    fn from(error: BidError) -> Error {
        Error::Refused(Refusal::from(&error))
    }
}

impl From<AmountError> for Error {
    fn from(error: AmountError) -> Error {
        Error::Refused(amount_refusal(&error))
    }
}

impl From<InvalidField> for Error {
    fn from(error: InvalidField) -> Error {
        Error::invalid_field(error.to_string())
    }
}

impl From<ImageError> for Error {
    fn from(error: ImageError) -> Error {
        match error {
            ImageError::UnsupportedType => Error::UnsupportedImage(error),
            ImageError::Empty => Error::invalid(Code::EmptyImage, error.to_string()),
            ImageError::Mismatch(_) => Error::invalid(Code::ImageMismatch, error.to_string()),
        }
    }
}
