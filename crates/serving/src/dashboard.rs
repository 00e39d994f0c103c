//! The live dashboard at `/`: one page and its script and style, compiled into the binary
//! (no CDN: it works offline). The page reads only the public API: `GET /v1/status`
//! each second (input rows/s and lag over time) and change subscriptions
//! (`/v1/outputs/{name}/changes`) of `category_stats`, `category_top_items`,
//! `scene_traffic` and `ads_curated`, redrawn on each `progress` event — so every panel
//! shows one complete time, named on the panel (`as of`).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The files under `/assets/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("dashboard.js", "text/javascript; charset=utf-8", include_str!("../assets/dashboard.js")),
    ("dashboard.css", "text/css; charset=utf-8", include_str!("../assets/dashboard.css")),
];

const PAGE: &str = include_str!("../assets/index.html");

/// `/` and `/assets/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }))
        .route("/assets/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => {
            ([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": format!("no asset {file:?}")})))
            .into_response(),
    }
}
