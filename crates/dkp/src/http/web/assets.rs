//! The pages' own static files, compiled into the binary: one stylesheet
//! and the scripts of the live room and the import page. Their URLs carry
//! no version, so they are cached briefly
//! and revalidated by `ETag` (the build's hash of the file).

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::super::AppState;

const FILES: [(&str, &str, &str); 3] = [
    ("/static/app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("/static/room.js", "text/javascript; charset=utf-8", include_str!("assets/room.js")),
    ("/static/import.js", "text/javascript; charset=utf-8", include_str!("assets/import.js")),
];

pub fn router() -> Router<AppState> {
    FILES.iter().fold(Router::new(), |router, (path, kind, body)| {
        router.route(path, get(move |headers: HeaderMap| async move { serve(&headers, kind, body) }))
    })
}

/// A short hash of the file, as its `ETag`.
fn tag(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("\"{hash:016x}\"")
}

fn serve(headers: &HeaderMap, kind: &'static str, body: &'static str) -> Response {
    let etag = tag(body);
    let cache = [(CACHE_CONTROL, "public, max-age=300".to_owned()), (ETAG, etag.clone())];
    if headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(CONTENT_TYPE, kind)], body).into_response()
}
