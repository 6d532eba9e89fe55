//! The pages' own static files, compiled into the binary: one stylesheet
//! and the scripts of the live room and the import page. Each is served
//! under a name that carries a hash of its content (`app.3f2a9c1b7e4d.css`)
//! and cached for a year as immutable, so a CDN in front
//! (`DKP_ASSET_PUBLIC_URL`) keeps it for good and a new build is new
//! names; the plain names stay, cached briefly, for links from before.

use std::collections::BTreeMap;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::super::AppState;
use crate::blobs::PublicUrls;

/// One static file: what templates call it, its plain name, its type, its bytes.
struct Asset {
    key: &'static str,
    name: &'static str,
    kind: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 3] = [
    Asset { key: "css", name: "app.css", kind: "text/css; charset=utf-8", body: include_str!("assets/app.css") },
    Asset {
        key: "room",
        name: "room.js",
        kind: "text/javascript; charset=utf-8",
        body: include_str!("assets/room.js"),
    },
    Asset {
        key: "import",
        name: "import.js",
        kind: "text/javascript; charset=utf-8",
        body: include_str!("assets/import.js"),
    },
];

/// The first 12 hex digits of the SHA-256 of the file.
fn hash(body: &str) -> String {
    Sha256::digest(body.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// `app.css` as `app.<hash>.css`.
fn hashed_name(asset: &Asset) -> String {
    let (stem, extension) = asset.name.rsplit_once('.').unwrap_or((asset.name, ""));
    format!("{stem}.{}.{extension}", hash(asset.body))
}

/// What templates link to, by key: `base` and the hashed name.
pub fn urls(base: &PublicUrls) -> BTreeMap<&'static str, String> {
    ASSETS.iter().map(|asset| (asset.key, base.of(&hashed_name(asset)))).collect()
}

pub fn router() -> Router<AppState> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        let (kind, body) = (asset.kind, asset.body);
        router
            .route(&format!("/static/{}", hashed_name(asset)), get(move || async move { immutable(kind, body) }))
            .route(
                &format!("/static/{}", asset.name),
                get(move |headers: HeaderMap| async move { revalidated(&headers, kind, body) }),
            )
    })
}

fn immutable(kind: &'static str, body: &'static str) -> Response {
    ([(CACHE_CONTROL, "public, max-age=31536000, immutable"), (CONTENT_TYPE, kind)], body).into_response()
}

/// A plain name: cached briefly and revalidated by its `ETag`.
fn revalidated(headers: &HeaderMap, kind: &'static str, body: &'static str) -> Response {
    let etag = format!("\"{}\"", hash(body));
    let cache = [(CACHE_CONTROL, "public, max-age=300".to_owned()), (ETAG, etag.clone())];
    if headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(CONTENT_TYPE, kind)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_named_by_its_content() {
        let urls = urls(&PublicUrls::parse("/static").unwrap());
        let css = &urls["css"];
        assert!(css.starts_with("/static/app.") && css.ends_with(".css") && css.len() == "/static/app..css".len() + 12);
        let cdn = super::urls(&PublicUrls::parse("https://cdn.example/dkp").unwrap());
        assert_eq!(cdn["css"], format!("https://cdn.example/dkp/{}", &css["/static/".len()..]));
        assert_ne!(hash("a"), hash("b"));
    }
}
