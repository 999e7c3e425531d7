//! Bulk import and export of the ledger over `/api/v1/admin`: a spreadsheet is checked
//! against the live ledger first (the dry run lists every bad row and why), and applied only
//! when asked, as a job whose progress the page polls. Applying sends the new and changed rows
//! to the engine in chunks, each chunk one command and one commit, so an import is logged like
//! any other change, with its actor; a second import of the same file changes nothing.

// Handlers return an early `Response` as their error: it is the answer, not a failure to
// pass up, and boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

use crate::admin::{error, side, staff, unavailable, LedgerUnavailable, Progress};
use crate::commands::{Caller, Reply, Request};
use crate::http::ApiState;
use anxin_core::{Amend, Amendment};
use anxin_proto::admin::ImportRequest;
pub use anxin_proto::admin::{ImportJob, RefusedRow};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Rows one engine command applies (one commit).
pub const APPLY_CHUNK: usize = 500;
/// The largest file taken.
pub const MAX_FILE_BYTES: usize = 128 * 1024 * 1024;

/// Imports running and done, by id (kept while the process lives; the ledger's log is the
/// lasting record).
#[derive(Debug, Default)]
pub struct Jobs {
    all: Mutex<HashMap<String, Arc<Mutex<ImportJob>>>>,
    next: AtomicUsize,
}

#[derive(Debug, Deserialize)]
pub struct ImportParams {
    kind: String,
    format: String,
    encoding: Option<String>,
    mapping: Option<String>,
    sheet: Option<String>,
    #[serde(default)]
    apply: bool,
    /// Answer only when the job has ended (scripts and tests); otherwise 202 at once.
    #[serde(default)]
    wait: bool,
}

/// The uploaded file, read only once the caller may import. Over [`MAX_FILE_BYTES`] it is
/// refused with a JSON `413`: by its `Content-Length` before a byte is read, or, sent without
/// one, as soon as it grows past the limit (the route's `DefaultBodyLimit`).
async fn file(upload: axum::extract::Request) -> Result<Vec<u8>, Response> {
    use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
    use axum::extract::FromRequest;
    let too_large = || {
        let why = format!("a file is at most {MAX_FILE_BYTES} bytes ({} MiB)", MAX_FILE_BYTES >> 20);
        error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", why)
    };
    let declared = upload.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FILE_BYTES as u64) {
        return Err(too_large());
    }
    match axum::body::Bytes::from_request(upload, &()).await {
        // Takes the buffer over where it can, rather than copying up to 128 MiB.
        Ok(bytes) => Ok(Vec::from(bytes)),
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => Err(too_large()),
        Err(_) => Err(error(StatusCode::BAD_REQUEST, "bad_upload", "the file did not arrive whole: send it again")),
    }
}

pub async fn start(
    State(state): State<ApiState>,
    Query(p): Query<ImportParams>,
    upload: axum::extract::Request,
) -> Response {
    let (user, side) = match (staff(&state, upload.headers(), true).await, side(&state)) {
        (Ok(u), Ok(s)) => (u, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let body = match file(upload).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = format!("imp-{}", state.imports.next.fetch_add(1, Ordering::Relaxed) + 1);
    let job = Arc::new(Mutex::new(ImportJob {
        id: id.clone(),
        state: "checking".into(),
        apply: p.apply,
        ..Default::default()
    }));
    state.imports.all.lock().expect("jobs lock").insert(id.clone(), job.clone());
    let request =
        ImportRequest { kind: p.kind, format: p.format, encoding: p.encoding, mapping: p.mapping, sheet: p.sheet };
    let task = {
        let (state, job) = (state.clone(), job.clone());
        tokio::spawn(async move {
            let progress: Progress = {
                let job = job.clone();
                Arc::new(move |done, total| {
                    let mut j = job.lock().expect("job lock");
                    (j.done, j.total) = (done, total);
                })
            };
            let checked = match side.import_check(request, body, progress).await {
                Ok(c) => c,
                Err(why) => {
                    let mut j = job.lock().expect("job lock");
                    (j.state, j.error) = ("failed".into(), Some(why));
                    return;
                }
            };
            let entries = checked.entries;
            {
                let mut j = job.lock().expect("job lock");
                j.report = Some(checked.report);
                if !j.apply {
                    j.state = "done".into();
                    return;
                }
                (j.state, j.done, j.total) = ("applying".into(), 0, entries.len());
            }
            let caller = Caller::Admin { id: user.id.clone() };
            for chunk in entries.chunks(APPLY_CHUNK) {
                let amends = chunk.iter().map(|e| Amend::new(Amendment::Upsert(e.clone()))).collect();
                let answer = crate::http::submit(&state, caller.clone(), Request::AmendMany(amends)).await.await;
                let mut j = job.lock().expect("job lock");
                match answer {
                    Ok(Reply::AmendedMany(outcomes)) => {
                        for (entry, outcome) in chunk.iter().zip(outcomes) {
                            match outcome {
                                Ok(_) => j.applied += 1,
                                Err(r) => j.refused.push(RefusedRow {
                                    id: entry.id().to_string(),
                                    code: r.code,
                                    error: r.message,
                                }),
                            }
                        }
                        j.done += chunk.len();
                    }
                    Ok(_) | Err(_) => {
                        let why = match answer {
                            Err(r) => r.message,
                            Ok(_) => "the engine answered something else".into(),
                        };
                        // What was applied stays applied; importing the file again applies
                        // the rest (applied rows come back unchanged).
                        (j.state, j.error) = ("failed".into(), Some(format!("stopped after {} rows: {why}", j.done)));
                        return;
                    }
                }
            }
            job.lock().expect("job lock").state = "done".into();
        })
    };
    if p.wait {
        let _ = task.await;
        let j = job.lock().expect("job lock").clone();
        return (StatusCode::OK, Json(j)).into_response();
    }
    let location = format!("/api/v1/admin/imports/{id}");
    let j = job.lock().expect("job lock").clone();
    let mut response = (StatusCode::ACCEPTED, Json(j)).into_response();
    if let Ok(l) = location.parse() {
        response.headers_mut().insert(header::LOCATION, l);
    }
    response
}

pub async fn status(State(state): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = staff(&state, &headers, true).await {
        return r;
    }
    let job = state.imports.all.lock().expect("jobs lock").get(&id).cloned();
    match job {
        Some(job) => Json(job.lock().expect("job lock").clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", format!("no import {id}")),
    }
}

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    #[serde(default = "csv")]
    format: String,
    #[serde(default = "utf8")]
    encoding: String,
}

fn csv() -> String {
    "csv".into()
}

fn utf8() -> String {
    "utf-8".into()
}

pub async fn export(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(p): Query<ExportParams>,
) -> Response {
    let side = match staff(&state, &headers, false).await.and_then(|_| side(&state)) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let extension = if p.format == "xlsx" { "xlsx" } else { "csv" };
    match side.export(kind.clone(), p.format, p.encoding).await {
        Ok((bytes, content_type)) => {
            let disposition = format!("attachment; filename=\"anxin-{kind}.{extension}\"");
            ([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes)
                .into_response()
        }
        Err(why) => error(StatusCode::UNPROCESSABLE_ENTITY, "bad_export", why),
    }
}

pub async fn mappings(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let side = match staff(&state, &headers, false).await.and_then(|_| side(&state)) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match side.mappings().await {
        Ok(all) => Json(all).into_response(),
        Err(LedgerUnavailable) => unavailable(),
    }
}

pub async fn save_mapping(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(mapping): Json<serde_json::Value>,
) -> Response {
    let (user, side) = match (staff(&state, &headers, true).await, side(&state)) {
        (Ok(u), Ok(s)) => (u, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if name.is_empty() || name.chars().count() > 64 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "bad_name", "a mapping's name is 1 to 64 characters");
    }
    match side.save_mapping(name, mapping, format!("staff:{}", user.id)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => error(StatusCode::UNPROCESSABLE_ENTITY, "bad_mapping", why),
    }
}
