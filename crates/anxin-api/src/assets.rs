//! The pages' static files (ES modules, style sheets, the vendored Leaflet and JsSIP), embedded in the
//! binary and served by name under `/assets/`, so a console works with no file beside the
//! daemon and no network beyond it.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

/// One embedded file: its name under `/assets/` and its bytes.
struct Asset {
    name: &'static str,
    body: &'static [u8],
}

/// Lists files under `assets/` by their path there; each is embedded at build time, so a
/// name in this list that has no file is a compile error, not a 404 in production.
macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(Asset { name: $name, body: include_bytes!(concat!("../assets/", $name)) }),*]
    };
}

/// Everything the pages load. The HTML pages themselves are served at `/console`,
/// `/responder`, `/family` and `/ledger`.
const ASSETS: &[Asset] = embedded![
    "console.js",
    "console.css",
    "console/actions.js",
    "console/alarm.js",
    "console/bulk.js",
    "console/detail.js",
    "console/family.js",
    "console/feed.js",
    "console/header.js",
    "console/incident.js",
    "console/keys.js",
    "console/map.js",
    "console/map-card.js",
    "console/parts.js",
    "console/phone.js",
    "console/queue.js",
    "console/signin.js",
    "console/state.js",
    "console/strings.js",
    "console/timeline.js",
    "console/welfare.js",
    "ledger.js",
    "ledger.css",
    "ledger/api.js",
    "ledger/fields.js",
    "ledger/form.js",
    "ledger/history.js",
    "ledger/kinds.js",
    "ledger/state.js",
    "ledger/strings.js",
    "ledger/table.js",
    "wall.js",
    "wall.css",
    "wall/strings.js",
    "services.js",
    "services.css",
    "services/strings.js",
    "family.js",
    "family.css",
    "family-sw.js",
    "family/care.js",
    "family/map.js",
    "family/strings.js",
    "responder.js",
    "responder.css",
    "responder/location.js",
    "responder/orders.js",
    "responder/strings.js",
    "responder/visit.js",
    "common/clock.js",
    "common/coords.js",
    "common/dom.js",
    "common/errors.js",
    "common/feed.js",
    "common/format.js",
    "common/http.js",
    "common/services.js",
    "common/i18n.js",
    "common/storage.js",
    "common/words.js",
    "vendor/leaflet/leaflet-src.esm.js",
    "vendor/leaflet/leaflet.css",
    "vendor/leaflet/images/layers.png",
    "vendor/leaflet/images/layers-2x.png",
    "vendor/leaflet/images/marker-icon.png",
    "vendor/leaflet/images/marker-icon-2x.png",
    "vendor/leaflet/images/marker-shadow.png",
    "vendor/leaflet/LICENSE",
    "vendor/jssip/jssip.min.js",
    "vendor/jssip/LICENSE",
];

/// The content type a file's name calls for; names the table may hold and nothing else.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

/// The embedded file called `name`, with its content type, if there is one.
pub fn find(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS.iter().find(|a| a.name == name).map(|a| (content_type(a.name), a.body))
}

/// Each file's entity tag, by its place in `ASSETS`: a hash of its bytes, made once. With
/// `no-cache` a browser asks again on every load; the tag lets the answer be an empty 304
/// rather than the whole file (Leaflet alone is 424 kB).
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let mut hasher = DefaultHasher::new();
                a.body.hash(&mut hasher);
                format!("\"{:016x}\"", hasher.finish())
            })
            .collect()
    })
}

/// Whether an `If-None-Match` header names `tag` (or is `*`).
fn matches(if_none_match: Option<&HeaderValue>, tag: &str) -> bool {
    let Some(Ok(value)) = if_none_match.map(HeaderValue::to_str) else { return false };
    value.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == tag)
}

/// `GET /assets/{*name}`: the file, revalidated on every load (`no-cache`) so a daemon
/// upgrade reaches consoles that stay open for days, and 304 when the browser holds it
/// already; an unknown name is a 404.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(at) = ASSETS.iter().position(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let asset = &ASSETS[at];
    let tag = etags()[at].as_str();
    if matches(headers.get(header::IF_NONE_MATCH), tag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag), (header::CACHE_CONTROL, "no-cache")]).into_response();
    }
    let content = content_type(asset.name);
    ([(header::CONTENT_TYPE, content), (header::CACHE_CONTROL, "no-cache"), (header::ETAG, tag)], asset.body)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_files_by_name_with_their_type() {
        assert_eq!(find("console.js").unwrap().0, "text/javascript; charset=utf-8");
        assert_eq!(find("common/feed.js").unwrap().0, "text/javascript; charset=utf-8");
        assert_eq!(find("vendor/leaflet/leaflet.css").unwrap().0, "text/css; charset=utf-8");
        assert_eq!(find("vendor/leaflet/images/layers.png").unwrap().0, "image/png");
        assert!(find("vendor/leaflet/leaflet-src.esm.js").unwrap().1.starts_with(b"/* @preserve"));
        assert_eq!(find("vendor/jssip/jssip.min.js").unwrap().0, "text/javascript; charset=utf-8");
        assert!(find("vendor/jssip/jssip.min.js").unwrap().1.starts_with(b"\n /*\n  * JsSIP"));
    }

    #[test]
    fn an_unknown_or_escaping_name_is_not_found() {
        assert!(find("nope.js").is_none());
        assert!(find("../src/lib.rs").is_none());
        assert!(find("").is_none());
        assert!(find("console").is_none());
    }

    #[tokio::test]
    async fn answers_with_the_type_and_no_cache_or_not_found() {
        let found = serve(Path("console/queue.js".to_string()), HeaderMap::new()).await;
        assert_eq!(found.status(), StatusCode::OK);
        assert_eq!(found.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(found.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(found.headers().contains_key(header::ETAG));
        // The hand-made map's file is gone; asking for it is a 404, not the console.
        let gone = serve(Path("console-map.js".to_string()), HeaderMap::new()).await;
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_file_the_browser_holds_is_not_sent_again() {
        let name = || Path("vendor/leaflet/leaflet-src.esm.js".to_string());
        let first = serve(name(), HeaderMap::new()).await;
        let tag = first.headers()[header::ETAG].clone();
        let mut asking = HeaderMap::new();
        asking.insert(header::IF_NONE_MATCH, tag.clone());
        let again = serve(name(), asking).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], tag);
        assert_eq!(again.headers()[header::CACHE_CONTROL], "no-cache");
        // Another file's tag (an older copy) gets the whole file.
        let mut stale = HeaderMap::new();
        stale.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"0000000000000000\", W/\"1\""));
        assert_eq!(serve(name(), stale).await.status(), StatusCode::OK);
    }

    /// A module left out of the table would be a 404 in the browser and a page that does
    /// not start; every file beside the pages is in it.
    #[test]
    fn every_file_under_assets_is_served() {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut files = Vec::new();
        walk(&root, &root, &mut files);
        let unserved: Vec<_> = files
            .iter()
            .filter(|f| !f.ends_with(".html") && !f.ends_with("README.md"))
            .filter(|f| find(f).is_none())
            .collect();
        assert!(unserved.is_empty(), "add these to ASSETS: {unserved:?}");
    }

    #[test]
    fn every_name_is_unique() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
    }
}
