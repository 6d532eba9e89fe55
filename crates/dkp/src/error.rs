//! `ApiError`: every outcome a request can end in other than success, each an
//! HTTP status with a stable code. It is the only `IntoResponse` error of the
//! service. What the client sees is separate from what is logged: internal
//! causes go to the log with the request id, never into the response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dkp_core::AmountError;
use dkp_core::ledger::LedgerError;
use dkp_core::names::InvalidField;
use serde_json::json;
use uuid::Uuid;

use crate::blobs::ImageError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("your role in this guild does not allow this")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// An upload that names no image type we keep.
    #[error("{0}")]
    UnsupportedImage(ImageError),
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("too many requests")]
    RateLimited { retry_after_s: u64 },
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    /// The write lost to concurrent writers on every attempt; trying again helps.
    #[error("too many concurrent changes to the same points; try again")]
    Contended,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code: "invalid_json", message: message.into() }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Unprocessable { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Conflict { code, message: message.into() }
    }

    /// The status and JSON body the client receives for this error.
    pub fn status_and_body(&self) -> (StatusCode, serde_json::Value) {
        let (status, code) = self.status_and_code();
        (status, json!({"error": {"code": code, "message": self.to_string()}}))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType | ApiError::UnsupportedImage(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Contended => (StatusCode::SERVICE_UNAVAILABLE, "contended"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let (status, body) = self.status_and_body();
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after_s = match self {
            ApiError::RateLimited { retry_after_s } => Some(retry_after_s),
            ApiError::Contended => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl ApiError {
    /// The refusal a store error stands for when it is the request's own
    /// fault and would be the same if the request came again; `None` for
    /// faults of the moment (contention, the database).
    pub fn refusal(error: &StoreError) -> Option<ApiError> {
        Some(match error {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(code) => ApiError::conflict(code, conflict_message(code)),
            StoreError::UnknownReference(field) => {
                ApiError::unprocessable("unknown_reference", format!("{field}: no such member or user in this guild"))
            }
            StoreError::Ledger(error) => error.clone().into(),
            _ => return None,
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if let Some(refusal) = ApiError::refusal(&error) {
            return refusal;
        }
        match error {
            StoreError::IdempotencyKeyReused => ApiError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            ),
            other if crate::store::is_contention(&other) => ApiError::Contended,
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                tracing::warn!("no database connection came free in time");
                ApiError::Unavailable("database")
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

fn conflict_message(code: &str) -> &'static str {
    match code {
        "username_taken" => "that username is taken",
        "slug_taken" => "that slug is taken",
        "already_member" => "that user is already a member of this guild",
        "pool_name_taken" => "this guild already has a pool of that name",
        "last_owner" => "a guild keeps at least one owner",
        "already_reversed" => "that entry was already reversed",
        "not_reversible" => "a reversal cannot itself be reversed",
        _ => "the request conflicts with the current state",
    }
}

impl From<LedgerError<Uuid>> for ApiError {
    fn from(error: LedgerError<Uuid>) -> ApiError {
        match error {
            LedgerError::InsufficientPoints { member, needed, available } => ApiError::unprocessable(
                "insufficient_points",
                format!("member {member} needs {needed} but has {available} available"),
            ),
            LedgerError::Amount(error) => error.into(),
            LedgerError::NotPositive | LedgerError::Zero => {
                ApiError::unprocessable("invalid_amount", error.to_string())
            }
            LedgerError::Unbalanced => ApiError::Internal(anyhow::anyhow!("unbalanced postings")),
            other => ApiError::unprocessable("invalid_field", other.to_string()),
        }
    }
}

impl From<AmountError> for ApiError {
    fn from(error: AmountError) -> ApiError {
        ApiError::unprocessable("invalid_amount", error.to_string())
    }
}

impl From<ImageError> for ApiError {
    fn from(error: ImageError) -> ApiError {
        match error {
            ImageError::UnsupportedType => ApiError::UnsupportedImage(error),
            ImageError::Empty => ApiError::unprocessable("empty_image", error.to_string()),
            ImageError::Mismatch(_) => ApiError::unprocessable("image_mismatch", error.to_string()),
        }
    }
}

impl From<InvalidField> for ApiError {
    fn from(error: InvalidField) -> ApiError {
        ApiError::unprocessable("invalid_field", error.to_string())
    }
}
