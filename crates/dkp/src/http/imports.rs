//! Imports and exports over HTTP. An import is the file as the raw body
//! (up to `IMPORT_LIMIT`, on this route only; 413 `payload_too_large` past
//! it, refused on the declared length before a byte is read), answered
//! with the report: 200 for a dry run or a file imported before
//! (`already_imported`), 201 when written. The standings export in one
//! answer as CSV, JSON, EQdkp Plus points XML or the SavedVariables of
//! MonolithDKP and WebDKP (written by `dkp_import::export`, so each reads
//! back as an import); the ledger as CSV or
//! JSON, streamed page by page from the store (newest entry first), never
//! loaded whole.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use dkp_core::Action;
use dkp_import::export;
use futures_util::StreamExt;
use uuid::Uuid;

use super::extract::{ListQuery, Path};
use super::{ApiError, AppState, wire};
use crate::model::{Entry, PageRequest, Standing};
use crate::service::imports::{ImportFile, ImportRequest, Importer, Upload};
use crate::service::{Caller, Service};

/// The largest file an import takes.
pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

/// Entries read from the store per page of a ledger export.
const EXPORT_PAGE: u32 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/imports", post(import))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/export", get(export_standings))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/entries/export", get(export_entries))
}

async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    query: ListQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let format = query.get("format").ok_or_else(|| ApiError::invalid_field("format: required"))?;
    let format = format.parse().map_err(|error| ApiError::invalid_field(format!("format: {error}")))?;
    let pool_id = query.get("pool_id").ok_or_else(|| ApiError::invalid_field("pool_id: required"))?.to_owned();
    let options = dkp_import::Options {
        team: query.get("team").map(str::to_owned),
        guild: query.get("guild").map(str::to_owned),
        table: query.get("table").map(str::to_owned),
    };
    let request = ImportRequest { format, pool_id, dry_run: query.flag("dry_run")?, options, parsed: None };
    // Who may import is known before 64 MiB are read.
    state.service.guild_access(&caller, &slug, Action::MovePoints).await?;
    let file = file(&headers, body).await?;
    let answer = state.service.import(Importer::Caller(&caller), &slug, request, file).await?;
    let status = if answer.written() { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(wire::import_report(&answer.report, answer.already_imported))).into_response())
}

/// The raw body, up to the import limit, spooled chunk by chunk to a
/// temporary file: the parse reads it from there through a small buffer,
/// so no part of the import holds the whole file in memory.
async fn file(headers: &HeaderMap, body: Body) -> Result<ImportFile, ApiError> {
    let too_large = || ApiError::PayloadTooLarge { limit: IMPORT_LIMIT };
    let spool_failed = |error: std::io::Error| ApiError::from(crate::service::Error::internal(error));
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > IMPORT_LIMIT) {
        return Err(too_large());
    }
    let mut upload = Upload::create().await.map_err(spool_failed)?;
    let mut chunks = body.into_data_stream();
    // A body that breaks off is answered as one past the limit was before: 413.
    while let Some(chunk) = chunks.next().await.transpose().map_err(|_| too_large())? {
        if upload.written() + chunk.len() as u64 > IMPORT_LIMIT as u64 {
            return Err(too_large());
        }
        upload.write(&chunk).await.map_err(spool_failed)?;
    }
    upload.finish().await.map_err(spool_failed)
}

/// What an export is written as (`?format=`, csv when left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExportFormat {
    Csv,
    Json,
    EqdkpXml,
    Monolith,
    Webdkp,
}

impl ExportFormat {
    /// The formats of a standings export.
    const STANDINGS: [ExportFormat; 5] =
        [ExportFormat::Csv, ExportFormat::Json, ExportFormat::EqdkpXml, ExportFormat::Monolith, ExportFormat::Webdkp];
    /// The formats of a ledger export.
    const LEDGER: [ExportFormat; 2] = [ExportFormat::Csv, ExportFormat::Json];

    fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
            ExportFormat::EqdkpXml => "eqdkp-xml",
            ExportFormat::Monolith => "monolith",
            ExportFormat::Webdkp => "webdkp",
        }
    }

    /// The query's format, one of `allowed`.
    fn from_query(query: &ListQuery, allowed: &[ExportFormat]) -> Result<ExportFormat, ApiError> {
        let Some(wanted) = query.get("format") else { return Ok(ExportFormat::Csv) };
        allowed.iter().copied().find(|format| format.as_str() == wanted).ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|format| format.as_str()).collect();
            ApiError::invalid_field(format!("format: one of {}", names.join(", ")))
        })
    }

    /// The answer carrying an export of `what` as a file to save.
    fn answer(self, what: &str, body: Body) -> Response {
        let (kind, file) = match self {
            ExportFormat::Csv => ("text/csv; charset=utf-8", format!("{what}.csv")),
            ExportFormat::Json => ("application/json", format!("{what}.json")),
            ExportFormat::EqdkpXml => ("application/xml; charset=utf-8", format!("{what}.xml")),
            // Named as the addon's own SavedVariables file, which it replaces.
            ExportFormat::Monolith => ("text/plain; charset=utf-8", "MonolithDKP.lua".to_owned()),
            ExportFormat::Webdkp => ("text/plain; charset=utf-8", "WebDKP.lua".to_owned()),
        };
        let disposition = format!("attachment; filename=\"{file}\"");
        ([(CONTENT_TYPE, kind.to_owned()), (CONTENT_DISPOSITION, disposition)], body).into_response()
    }
}

async fn export_standings(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let format = ExportFormat::from_query(&query, &ExportFormat::STANDINGS)?;
    let standings = state.service.standings(&caller, &slug, &pool_id, true).await?;
    let body = match format {
        ExportFormat::Csv => {
            let mut text = String::from(wire::STANDINGS_CSV_HEADER);
            standings.iter().for_each(|standing| text.push_str(&wire::standing_csv(standing)));
            text
        }
        ExportFormat::Json => {
            let rows: Vec<_> = standings.iter().map(wire::standing_export).collect();
            serde_json::json!({ "standings": rows }).to_string()
        }
        ExportFormat::EqdkpXml => {
            let (rows, pool) = tool_rows(&state, &caller, &slug, &pool_id, &standings).await?;
            export::eqdkp_xml(&rows, &pool, state.service.now().0.unix_timestamp())
        }
        ExportFormat::Monolith => export::monolith(&tool_rows(&state, &caller, &slug, &pool_id, &standings).await?.0),
        ExportFormat::Webdkp => {
            let (rows, pool) = tool_rows(&state, &caller, &slug, &pool_id, &standings).await?;
            export::webdkp(&rows, &pool)
        }
    };
    Ok(format.answer("standings", Body::from(body)))
}

/// The standings as the exports of `dkp-import` take them, each member with
/// the class of its main character (else of another), and the pool's name.
async fn tool_rows<'a>(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    pool_id: &str,
    standings: &'a [Standing],
) -> Result<(Vec<export::Standing<'a>>, String), ApiError> {
    let pool = state.service.pool(caller, slug, pool_id).await?;
    let characters = state.service.characters(caller, slug, None).await?;
    let mut classes = HashMap::new();
    for character in characters.iter().filter(|c| c.main).chain(&characters) {
        if let Some(class) = character.class.as_deref().and_then(dkp_import::Class::from_name) {
            classes.entry(character.member_id).or_insert(class);
        }
    }
    let row = |s: &'a Standing| export::Standing {
        name: &s.name,
        balance: s.balance,
        earned: s.earned,
        spent: s.spent,
        class: classes.get(&s.member_id).copied(),
    };
    Ok((standings.iter().map(row).collect(), pool.name))
}

/// Where a ledger export stands between two pages.
struct Cursor {
    service: Arc<Service>,
    caller: Caller,
    slug: String,
    pool_id: String,
    names: Arc<HashMap<Uuid, String>>,
    csv: bool,
    next: Option<Uuid>,
    first: bool,
    done: bool,
}

async fn export_entries(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let format = ExportFormat::from_query(&query, &ExportFormat::LEDGER)?;
    // Access and the pool are checked here, so that a refusal is a status, not a cut stream.
    let standings = state.service.standings(&caller, &slug, &pool_id, true).await?;
    let names = Arc::new(standings.into_iter().map(|s| (s.member_id, s.name)).collect::<HashMap<_, _>>());
    let start = Cursor {
        service: state.service.clone(),
        caller,
        slug,
        pool_id,
        names,
        csv: format == ExportFormat::Csv,
        next: None,
        first: true,
        done: false,
    };
    let stream = futures_util::stream::unfold(start, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        let chunk = next_page(&mut cursor).await;
        Some((chunk, cursor))
    });
    Ok(format.answer("entries", Body::from_stream(stream)))
}

/// The text of the next page of a ledger export (the opening and the close included).
async fn next_page(cursor: &mut Cursor) -> Result<Bytes, std::io::Error> {
    let page = PageRequest { limit: EXPORT_PAGE, before: cursor.next };
    let page = cursor
        .service
        .entries(&cursor.caller, &cursor.slug, &cursor.pool_id, None, page)
        .await
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let mut text = String::new();
    if cursor.first {
        text.push_str(if cursor.csv { wire::ENTRIES_CSV_HEADER } else { "{\"entries\":[" });
    }
    for entry in &page.items {
        render(cursor, entry, &mut text);
    }
    cursor.next = page.next;
    if page.next.is_none() {
        cursor.done = true;
        if !cursor.csv {
            text.push_str("]}");
        }
    }
    Ok(Bytes::from(text))
}

fn render(cursor: &mut Cursor, entry: &Entry, text: &mut String) {
    if cursor.csv {
        text.push_str(&wire::entry_csv(entry, |id| cursor.names.get(id).cloned()));
    } else {
        if !cursor.first {
            text.push(',');
        }
        text.push_str(&serde_json::json!(entry).to_string());
    }
    cursor.first = false;
}
