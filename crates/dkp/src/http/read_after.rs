//! Read-your-writes across instances when lag-tolerant reads go to a replica
//! (see `store::replica`). A successful write answers with the primary's log
//! position after it, as the `X-Dkp-Read-After` header and the
//! `dkp_read_after` cookie; a client that sends either back has its
//! lag-tolerant reads served by a replica only once the replica has replayed
//! that far. Browsers return the cookie by themselves; API clients echo the
//! header. Without a replica nothing is added and nothing is asked.

use axum::extract::{Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::extract::cookie;
use crate::service::{Lsn, Read};

pub const HEADER: HeaderName = HeaderName::from_static("x-dkp-read-after");
pub const COOKIE: &str = "dkp_read_after";
/// How long a browser keeps its mark: far beyond any lag a healthy replica
/// has, and once the replica is past it the mark costs nothing.
const COOKIE_MAX_AGE_S: u32 = 300;

/// Where the lag-tolerant reads of this request may go, from its mark.
pub fn reads(headers: &HeaderMap) -> Read {
    let mark = match headers.get(&HEADER) {
        Some(value) => value.to_str().ok(),
        None => match cookie(headers, COOKIE) {
            Some(value) => Some(value),
            None => return Read::MayLag(None),
        },
    };
    match mark.map(str::parse::<Lsn>) {
        Some(Ok(lsn)) => Read::MayLag(Some(lsn)),
        // A mark we cannot read still says the client wrote: give it the freshest data.
        _ => Read::Fresh,
    }
}

/// Marks the answer to a successful write with the primary's log position.
pub async fn mark_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut response = next.run(request).await;
    if !writes || !response.status().is_success() {
        return response;
    }
    let position = match state.service.write_position().await {
        Ok(Some(position)) => position,
        Ok(None) => return response,
        Err(error) => {
            // The write stands; without a mark this client may read a replica that lags behind it.
            tracing::warn!(%error, "cannot read the primary's log position for read-your-writes");
            return response;
        }
    };
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={position}; Path=/; HttpOnly; SameSite=Lax; Max-Age={COOKIE_MAX_AGE_S}{secure}");
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&position.to_string()) {
        headers.insert(HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_request_without_a_mark_may_read_a_replica() {
        assert_eq!(reads(&headers(&[("cookie", "dkp_session=abc")])), Read::MayLag(None));
    }

    #[test]
    fn the_header_wins_over_the_cookie() {
        let both = headers(&[("x-dkp-read-after", "0/20"), ("cookie", "dkp_read_after=0/10")]);
        assert_eq!(reads(&both), Read::MayLag(Some(Lsn(0x20))));
        let cookie_only = headers(&[("cookie", "a=b; dkp_read_after=1/10")]);
        assert_eq!(reads(&cookie_only), Read::MayLag(Some(Lsn((1 << 32) | 0x10))));
    }

    #[test]
    fn a_mark_that_does_not_parse_reads_from_the_primary() {
        assert_eq!(reads(&headers(&[("x-dkp-read-after", "soon")])), Read::Fresh);
        assert_eq!(reads(&headers(&[("cookie", "dkp_read_after=12")])), Read::Fresh);
    }
}
