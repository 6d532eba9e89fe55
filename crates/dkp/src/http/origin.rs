//! Cross-site request forgery: a browser attaches the session cookie to
//! requests any site makes, so a request authenticated by the cookie is
//! trusted only if it comes from this service's own pages. Such a request
//! that changes something (any method but GET, HEAD and OPTIONS) or upgrades
//! to a WebSocket must carry an `Origin` equal to the service's own origin,
//! or, without an `Origin`, a `Sec-Fetch-Site` of `same-origin` or `none`.
//! A request with neither header comes from no browser of this decade (curl,
//! an old client) and passes. A bearer token is never attached by a browser
//! on its own, so requests that carry one are not checked.
//!
//! The own origin is `DKP_PUBLIC_URL` when set (and then only it); otherwise
//! the request's `Host`, with the scheme the request was served on: plain
//! HTTP here, or `X-Forwarded-Proto` when a balancer in front is trusted
//! (`DKP_TRUST_FORWARDED_FOR`).

use std::str::FromStr;

use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, Uri};

use super::ApiError;

/// A web origin: scheme, host and port (the scheme's default when not written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl FromStr for Origin {
    type Err = String;

    /// Reads `scheme://host[:port]`, with any path after it ignored (so a
    /// public URL may name where the service is mounted).
    fn from_str(text: &str) -> Result<Origin, String> {
        let refuse = || format!("{text:?} is not an origin like https://dkp.example");
        let uri: Uri = text.parse().map_err(|_| refuse())?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else { return Err(refuse()) };
        if authority.as_str().contains('@') {
            return Err(refuse());
        }
        Origin::of(scheme, authority.host(), authority.port_u16()).ok_or_else(refuse)
    }
}

impl Origin {
    fn of(scheme: &str, host: &str, port: Option<u16>) -> Option<Origin> {
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin { host: host.to_ascii_lowercase(), port: port.unwrap_or(default), scheme })
    }
}

/// What the service knows of its own origin.
#[derive(Clone, Debug, Default)]
pub struct OwnOrigin {
    /// `DKP_PUBLIC_URL`: when set, the one origin accepted.
    pub public: Option<Origin>,
    /// Whether `X-Forwarded-Proto` names the scheme the client used.
    pub trust_forwarded: bool,
}

impl OwnOrigin {
    /// The origin this request was sent to, as far as the service can tell.
    fn of(&self, headers: &HeaderMap) -> Option<Origin> {
        if let Some(public) = &self.public {
            return Some(public.clone());
        }
        let host: axum::http::uri::Authority = headers.get(HOST)?.to_str().ok()?.parse().ok()?;
        let forwarded = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok());
        let scheme = match forwarded.filter(|_| self.trust_forwarded) {
            // The balancer's own entry is the last one, as for X-Forwarded-For.
            Some(schemes) => schemes.rsplit(',').next().unwrap_or("http").trim(),
            None => "http",
        };
        Origin::of(scheme, host.host(), host.port_u16())
    }

    /// Refuses a request authenticated by the cookie that another site may
    /// have sent: one that changes something (or upgrades, which `upgrade`
    /// says) and names a foreign origin.
    pub fn check(&self, method: &Method, upgrade: bool, headers: &HeaderMap) -> Result<(), ApiError> {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if safe && !upgrade {
            return Ok(());
        }
        let same = match headers.get(ORIGIN) {
            Some(origin) => {
                let origin = origin.to_str().ok().and_then(|text| text.parse::<Origin>().ok());
                origin.is_some() && origin == self.of(headers)
            }
            None => match headers.get("sec-fetch-site") {
                Some(site) => matches!(site.to_str(), Ok("same-origin" | "none")),
                None => true,
            },
        };
        if same { Ok(()) } else { Err(ApiError::CrossOrigin) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap())).collect()
    }

    #[test]
    fn origins_compare_with_default_ports_and_any_case() {
        let parse = |text: &str| text.parse::<Origin>();
        assert_eq!(parse("https://DKP.example:443"), parse("https://dkp.example/guilds"));
        assert_ne!(parse("http://dkp.example").unwrap(), parse("https://dkp.example").unwrap());
        assert_ne!(parse("http://dkp.example").unwrap(), parse("http://dkp.example:8080").unwrap());
        for bad in ["null", "dkp.example", "ftp://dkp.example", "https://user@dkp.example", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_changes_and_upgrades_from_elsewhere_are_refused() {
        let own = OwnOrigin::default();
        let evil = headers(&[("host", "dkp.test"), ("origin", "https://evil.example")]);
        assert!(own.check(&Method::GET, false, &evil).is_ok());
        assert!(own.check(&Method::GET, true, &evil).is_err());
        assert!(own.check(&Method::DELETE, false, &evil).is_err());
        let home = headers(&[("host", "dkp.test:8080"), ("origin", "http://dkp.test:8080")]);
        assert!(own.check(&Method::POST, false, &home).is_ok());
        assert!(own.check(&Method::POST, false, &headers(&[("origin", "http://dkp.test")])).is_err(), "no Host");
        assert!(own.check(&Method::POST, false, &headers(&[])).is_ok(), "a client that says nothing");
        assert!(own.check(&Method::POST, false, &headers(&[("sec-fetch-site", "none")])).is_ok());
        assert!(own.check(&Method::POST, false, &headers(&[("sec-fetch-site", "same-site")])).is_err());
    }

    #[test]
    fn a_forwarded_scheme_counts_only_behind_a_trusted_balancer() {
        let https = headers(&[("host", "dkp.test"), ("x-forwarded-proto", "https"), ("origin", "https://dkp.test")]);
        assert!(OwnOrigin { public: None, trust_forwarded: true }.check(&Method::POST, false, &https).is_ok());
        assert!(OwnOrigin { public: None, trust_forwarded: false }.check(&Method::POST, false, &https).is_err());
    }
}
