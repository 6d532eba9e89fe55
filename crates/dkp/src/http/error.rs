//! `ApiError`: every outcome a request can end in other than success, each an
//! HTTP status with a stable code; the only `IntoResponse` error, and the one
//! place where the service's errors become statuses. What the client sees is
//! separate from what is logged: internal causes go to the log with the
//! request id, never into the response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::model::{Code, Refusal, RefusalKind};
use crate::service::Error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be read (its body, the upgrade it asks for).
    #[error("{message}")]
    BadRequest { code: Code, message: String },
    #[error("authentication required")]
    Unauthenticated,
    /// A request riding on the session cookie that another site may have sent.
    #[error("a request with the session cookie must come from this service's own pages")]
    CrossOrigin,
    /// No route here, or a path that names nothing.
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error(transparent)]
    Service(#[from] Error),
}

impl ApiError {
    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code: Code::InvalidJson, message: message.into() }
    }

    /// A query parameter that does not read.
    pub fn invalid_field(message: impl Into<String>) -> ApiError {
        ApiError::Service(Error::invalid_field(message))
    }

    /// The status and JSON body the client receives for this error.
    pub fn status_and_body(&self) -> (StatusCode, serde_json::Value) {
        let (status, code) = self.status_and_code();
        (status, json!({"error": {"code": code, "message": self.to_string()}}))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code.as_str()),
            ApiError::Unauthenticated | ApiError::Service(Error::Unauthenticated) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated")
            }
            ApiError::CrossOrigin => (StatusCode::FORBIDDEN, Code::CrossOrigin.as_str()),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::PayloadTooLarge { .. } | ApiError::Service(Error::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::UnsupportedMediaType | ApiError::Service(Error::UnsupportedImage(_)) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Service(Error::Forbidden) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Service(Error::Refused(refusal)) => (refused(refusal), refusal.code.as_str()),
            ApiError::Service(Error::RateLimited { .. }) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Service(Error::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Service(Error::Busy) => (StatusCode::SERVICE_UNAVAILABLE, "contended"),
            ApiError::Service(Error::Internal(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The status of a refusal.
pub fn refused(refusal: &Refusal) -> StatusCode {
    match refusal.kind {
        RefusalKind::NotFound => StatusCode::NOT_FOUND,
        RefusalKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        RefusalKind::Conflict => StatusCode::CONFLICT,
    }
}

impl ApiError {
    /// Logs the cause of a fault of the server (in the request's span, so
    /// with its id); the client's mistakes are not logged.
    pub fn log_cause(&self) {
        if let ApiError::Service(Error::Internal(cause)) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_cause();
        let (status, body) = self.status_and_body();
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after_s = match self {
            ApiError::Service(Error::RateLimited { retry_after_s }) => Some(retry_after_s),
            ApiError::Service(Error::Busy) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
