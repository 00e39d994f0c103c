//! The HTTP API of `--serve` (axum on tokio): lookups as of one time, change
//! subscriptions, metrics and health. Routes and responses: README "Serving".
//!
//! Every lookup response carries `as_of`; every value in it is read at that one time
//! ([`crate::store`]). Errors are JSON `{"error": …}` with 400 (malformed parameters),
//! 404 (unknown output, route or id), 410 (`as_of` no longer held, with `oldest_as_of`),
//! 413 (body over [`MAX_BODY`]), 503 (no time complete yet). Every list a request can
//! ask for is capped ([`MAX_ITEMS`]), so no request makes the server allocate without bound.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream;
use serde_json::{json, Map, Value};

use crate::recall::{self, List};
use crate::store::{parse_fields, parse_key, AsOf, Row, Store, Table, Update};
use dataflows::recall_user_signals::{Signal, Signals};
use platform::model::{Scene, Time};
use platform::output::parse_scored;
use platform::rates::{format_micro, smoothed_ctr, smoothed_cvr, Micro};
use platform::stats::Stats;
use sinks::Field;

/// The largest request body accepted (a batch of [`MAX_ITEMS`] ids fits).
pub const MAX_BODY: usize = 64 * 1024;
/// The most ids in a batch, rows in a listing, or candidates asked for.
pub const MAX_ITEMS: usize = 1000;

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    pub store: Arc<Store>,
    /// `--ad-refresh-ms` of the run (the ad set's refresh boundaries).
    pub ad_refresh_ms: u64,
}

/// The routes.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/outputs", get(outputs))
        .route("/v1/outputs/{name}", get(output))
        .route("/v1/outputs/{name}/changes", get(changes))
        .route("/v1/items:batch", post(items_batch))
        .route("/v1/items/{id}", get(item))
        .route("/v1/items/{id}/similar", get(similar))
        .route("/v1/users/{id}", get(user))
        .route("/v1/categories/{id}/top", get(category_top))
        .route("/v1/scenes/{scene}/traffic", get(scene_traffic))
        .route("/v1/ads", get(ads))
        .merge(crate::dashboard::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(api.clone(), measure))
        .with_state(api)
}

/// Counts and times every request by route.
async fn measure(State(api): State<Api>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let response = next.run(request).await;
    api.store.metrics.request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// An error answer: a status and `{"error": message, …}`.
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    fn new(status: StatusCode, message: String) -> ApiError {
        ApiError { status, body: json!({ "error": message }) }
    }

    fn bad(message: String) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: String) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad(format!("malformed query: {}", r.body_text()))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("request body over {MAX_BODY} bytes")
        } else {
            format!("malformed body: {}", r.body_text())
        };
        ApiError::new(if status == StatusCode::PAYLOAD_TOO_LARGE { status } else { StatusCode::BAD_REQUEST }, message)
    }
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;
type Answer = Result<Json<Value>, ApiError>;

/// The query parameters, or a 400.
fn params(q: Params) -> Result<HashMap<String, String>, ApiError> {
    Ok(q?.0)
}

/// A numeric parameter (`None` when absent), or a 400.
fn number(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name).map(|v| v.parse::<u64>().map_err(|_| ApiError::bad(format!("{name}: not a number: {v:?}")))).transpose()
}

/// A count parameter within `1..=MAX_ITEMS` (default `default`), or a 400.
fn count(q: &HashMap<String, String>, name: &str, default: usize) -> Result<usize, ApiError> {
    match number(q, name)? {
        None => Ok(default),
        Some(k) if (1..=MAX_ITEMS as u64).contains(&k) => Ok(k as usize),
        Some(k) => Err(ApiError::bad(format!("{name}: {k} is not within 1..={MAX_ITEMS}"))),
    }
}

/// An id in the path, or a 400.
fn id(text: &str, what: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| ApiError::bad(format!("{what}: not an id: {text:?}")))
}

fn scene(text: &str) -> Result<Scene, ApiError> {
    Scene::new(text.as_bytes()).map_err(|e| ApiError::bad(format!("scene {text:?}: {e}")))
}

impl Api {
    /// The time to answer as of: `?as_of=T` if still held, else the latest complete.
    fn at(&self, q: &HashMap<String, String>) -> Result<Time, ApiError> {
        match self.store.as_of(number(q, "as_of")?) {
            AsOf::At(t) => Ok(t),
            AsOf::NotReady => {
                Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no time is complete yet: try again shortly".into()))
            }
            AsOf::Expired { oldest } => Err(ApiError {
                status: StatusCode::GONE,
                body: json!({"error": format!("as_of is older than the oldest time held ({oldest})"), "oldest_as_of": oldest}),
            }),
            AsOf::Future { latest } => Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                body: json!({"error": format!("as_of is not complete yet; the latest complete time is {latest}"), "latest_as_of": latest}),
            }),
        }
    }

    /// An output of this run, or a 404.
    fn table(&self, name: &str) -> Result<&Table, ApiError> {
        self.store
            .table(name)
            .ok_or_else(|| ApiError::not_found(format!("no output {name:?} in this run (GET /v1/outputs lists them)")))
    }

    /// `name`'s row of `key` as of `at` as an object (`None`: no row, or no such output).
    fn row(&self, name: &str, key: &[Field], at: Time) -> Option<Value> {
        let table = self.store.table(name)?;
        table.get(key, at).map(|r| row_json(table, &r))
    }

    /// `name`'s rows under `prefix` as of `at` (none when the output is not in the run).
    fn rows(&self, name: &str, prefix: &[Field], at: Time, limit: usize) -> Vec<Row> {
        self.store.table(name).map(|t| t.scan(prefix, at, limit, None)).unwrap_or_default()
    }

    fn rows_json(&self, name: &str, prefix: &[Field], at: Time, limit: usize) -> Option<Value> {
        let table = self.store.table(name)?;
        Some(Value::Array(table.scan(prefix, at, limit, None).iter().map(|r| row_json(table, r)).collect()))
    }

    /// The CTR/CVR prior as of `at`.
    fn prior(&self, at: Time) -> Option<Stats> {
        let row = self.store.table("ctr_cvr_prior")?.get(&[], at)?;
        Some(Stats { impressions: int(&row[0]), clicks: int(&row[1]), buys: int(&row[2]), ..Stats::default() })
    }

    /// Everything about item `item` as of `at` (`None`: nothing is known of it).
    fn item(&self, item: u64, at: Time) -> Option<ItemJson<'_>> {
        let key = [Field::U(item)];
        let row = |name: &str| -> Option<RowJson<'_, Row>> {
            let table = self.store.table(name)?;
            Some(RowJson(table, table.get(&key, at)?))
        };
        let catalog = row("catalog");
        let stats = row("item_stats");
        // The counters are item_stats' (`impressions, clicks, …, buys` after the id).
        let ctr_cvr = stats.as_ref().map(|RowJson(_, row)| {
            let s = Stats { impressions: int(&row[1]), clicks: int(&row[2]), buys: int(&row[5]), ..Stats::default() };
            let prior = self.prior(at);
            CtrCvr {
                buys: s.buys,
                clicks: s.clicks,
                ctr: micro_f64(smoothed_ctr(&s, prior.as_ref())),
                cvr: micro_f64(smoothed_cvr(&s, prior.as_ref())),
                impressions: s.impressions,
            }
        });
        // Its rank among its category's top items (`category_id` is the catalog's second column).
        let category = catalog.as_ref().and_then(|RowJson(_, c)| match c.get(1) {
            Some(Field::U(c)) => Some(*c),
            _ => None,
        });
        let category_rank = category.and_then(|c| {
            self.rows("category_top_items", &[Field::U(c)], at, usize::MAX)
                .into_iter()
                .find(|r| r[2] == Field::U(item))
                .map(|r| CategoryRank { category_id: c, rank: int(&r[1]) })
        });
        let found = ItemJson {
            catalog,
            category_rank,
            ctr_cvr,
            display_stats: row("item_display_stats"),
            item_id: item,
            rank_features: row("item_rank_features"),
            stats,
        };
        let known = found.catalog.is_some()
            || found.stats.is_some()
            || found.rank_features.is_some()
            || found.display_stats.is_some();
        known.then_some(found)
    }
}

/// An item as `GET /v1/items/{id}` answers it, serialized straight into the response (the
/// fields in name order, like every object the API writes; absent parts are null).
#[derive(serde::Serialize)]
struct ItemJson<'a> {
    catalog: Option<RowJson<'a, Row>>,
    category_rank: Option<CategoryRank>,
    ctr_cvr: Option<CtrCvr>,
    display_stats: Option<RowJson<'a, Row>>,
    item_id: u64,
    rank_features: Option<RowJson<'a, Row>>,
    stats: Option<RowJson<'a, Row>>,
}

/// An item's smoothed rates, derived at read time from its counters and the prior.
#[derive(serde::Serialize)]
struct CtrCvr {
    buys: i64,
    clicks: i64,
    ctr: Option<f64>,
    cvr: Option<f64>,
    impressions: i64,
}

#[derive(serde::Serialize)]
struct CategoryRank {
    category_id: u64,
    rank: i64,
}

/// A row as a JSON object by column name, serialized straight into the response: columns
/// in name order (as a `serde_json` object lists them), numbers as numbers (a 128-bit sum
/// beyond 64 bits as a string), fixed-point values with their six decimals.
struct RowJson<'a, R>(&'a Table, R);

impl<R: std::ops::Deref<Target = [Field]>> serde::Serialize for RowJson<'_, R> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let RowJson(table, row) = self;
        let mut map = s.serialize_map(Some(row.len().min(table.columns.len())))?;
        for &i in table.by_name.iter() {
            if let Some(field) = row.get(i) {
                map.serialize_entry(table.columns[i], &FieldJson(field))?;
            }
        }
        map.end()
    }
}

/// One field as JSON ([`RowJson`]).
struct FieldJson<'a>(&'a Field);

impl serde::Serialize for FieldJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Field::U(v) => s.serialize_u64(*v),
            Field::I(v) => s.serialize_i64(*v),
            Field::Wide(v) => match i64::try_from(*v) {
                Ok(v) => s.serialize_i64(v),
                Err(_) => s.serialize_str(&v.to_string()),
            },
            Field::S(scene) => s.serialize_str(scene.as_str()),
            Field::Fixed(m) => micro_f64(*m).serialize(s),
            Field::Label(l) => s.serialize_str(l),
            Field::Text(t) => s.serialize_str(t),
        }
    }
}

/// An integer field (counters, ids, ranks).
fn int(f: &Field) -> i64 {
    match f {
        Field::U(v) => *v as i64,
        Field::I(v) => *v,
        Field::Wide(v) => *v as i64,
        _ => 0,
    }
}

/// The members of a ranked list field (`recall_hot`'s `items`, `recall_i2i`'s `neighbors`).
fn scored(f: &Field) -> Vec<(u64, i64)> {
    match f {
        Field::Text(t) => parse_scored(t).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A fixed-point value as a number with its six decimals (`None` when empty).
fn micro_f64(m: Option<Micro>) -> Option<f64> {
    let mut text = String::new();
    format_micro(m?, &mut text);
    text.parse::<f64>().ok()
}

/// A row as an object by column name.
pub fn row_json(table: &Table, row: &[Field]) -> Value {
    serde_json::to_value(RowJson(table, row)).expect("a row is JSON")
}

/// Key columns as text, as `?key=` and `?after=` take them.
fn key_text(key: &[Field]) -> String {
    key.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// A row's key columns (which lead it) as an object.
fn key_json(table: &Table, key: &[Field]) -> Value {
    row_json(table, key)
}

async fn readyz(State(api): State<Api>) -> Response {
    match api.store.latest() {
        Some(t) => Json(json!({"status": "ready", "as_of": t})).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "starting", "error": "no time complete yet"})))
            .into_response(),
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    let body = api.store.metrics.render(api.store.complete(), api.store.latest());
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn status(State(api): State<Api>) -> Json<Value> {
    Json(api.store.metrics.status(api.store.complete(), api.store.latest()))
}

async fn outputs(State(api): State<Api>) -> Answer {
    let list: Vec<Value> = api
        .store
        .tables()
        .map(|t| {
            json!({
                "name": t.name, "columns": t.columns, "key_columns": &t.columns[..t.key],
                "rows": t.len(), "complete_before": t.frontier(),
            })
        })
        .collect();
    Ok(Json(json!({"as_of": api.store.latest(), "oldest_as_of": api.store.oldest(), "outputs": list})))
}

/// `?key=v1,v2` (every key column): that row; `?prefix=v1`: the rows under it; neither:
/// the first rows. Pages of `?limit=` rows (default 100, at most [`MAX_ITEMS`]): a full
/// page carries `next`, to pass as `?after=` for the next one.
async fn output(State(api): State<Api>, Path(name): Path<String>, q: Params) -> Answer {
    let q = params(q)?;
    let table = api.table(&name)?;
    let at = api.at(&q)?;
    let sample = table.sample();
    let split = |v: &String| -> Vec<String> { v.split(',').map(str::to_string).collect() };
    if let Some(key) = q.get("key") {
        let parts = split(key);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let key = parse_key(table, sample.as_ref(), &parts).map_err(ApiError::bad)?;
        let row = table
            .get(&key, at)
            .ok_or_else(|| ApiError::not_found(format!("{name}: no row with key {:?}", q["key"])))?;
        return Ok(Json(json!({"as_of": at, "output": name, "row": row_json(table, &row)})));
    }
    let limit = count(&q, "limit", 100)?;
    let prefix = match q.get("prefix") {
        None => Vec::new(),
        Some(p) => {
            let parts = split(p);
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            parse_fields(table, sample.as_ref(), &parts).map_err(ApiError::bad)?.to_vec()
        }
    };
    let after = match q.get("after") {
        None => None,
        Some(a) => {
            let parts = split(a);
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            Some(parse_key(table, sample.as_ref(), &parts).map_err(ApiError::bad)?)
        }
    };
    let rows = table.scan(&prefix, at, limit, after.as_deref());
    // A full page: `next` is the `after` of the next one.
    let next = (rows.len() == limit).then(|| rows.last().map(|r| key_text(&r[..table.key]))).flatten();
    let rows: Vec<Value> = rows.iter().map(|r| row_json(table, r)).collect();
    Ok(Json(json!({"as_of": at, "output": name, "rows": rows, "next": next})))
}

/// `{"as_of": T, "item": {...}}`, or `{"as_of": T, "items": [...]}`.
#[derive(serde::Serialize)]
struct Items<'a> {
    as_of: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<ItemJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<Option<ItemJson<'a>>>>,
}

async fn item(State(api): State<Api>, Path(item): Path<String>, q: Params) -> Result<Response, ApiError> {
    let q = params(q)?;
    let item = id(&item, "item")?;
    let at = api.at(&q)?;
    let value = api.item(item, at).ok_or_else(|| ApiError::not_found(format!("no item {item} as of {at}")))?;
    Ok(Json(Items { as_of: at, item: Some(value), items: None }).into_response())
}

#[derive(serde::Deserialize)]
struct Batch {
    ids: Vec<u64>,
}

/// `{"ids": [...]}` (at most [`MAX_ITEMS`]): each item as `GET /v1/items/{id}` gives it
/// (null when unknown), all as of one time.
async fn items_batch(
    State(api): State<Api>,
    q: Params,
    body: Result<Json<Batch>, JsonRejection>,
) -> Result<Response, ApiError> {
    let q = params(q)?;
    let Json(batch) = body?;
    if batch.ids.len() > MAX_ITEMS {
        return Err(ApiError::bad(format!("{} ids: at most {MAX_ITEMS} per batch", batch.ids.len())));
    }
    let at = api.at(&q)?;
    let items = batch.ids.iter().map(|&i| api.item(i, at)).collect();
    Ok(Json(Items { as_of: at, item: None, items: Some(items) }).into_response())
}

/// An item's i2i neighbours per scene (`?scene=` for one).
async fn similar(State(api): State<Api>, Path(item): Path<String>, q: Params) -> Answer {
    let q = params(q)?;
    let item = id(&item, "item")?;
    let wanted = q.get("scene").map(|s| scene(s)).transpose()?;
    let at = api.at(&q)?;
    let table = api.table("recall_i2i")?;
    let mut by_scene: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    // Keys are (scene, item): per scene, the item's list in one row, ranked.
    let scenes: Vec<Scene> = match wanted {
        Some(s) => vec![s],
        None => scenes_of(&api, at),
    };
    for s in scenes {
        for row in table.scan(&[Field::S(s), Field::U(item)], at, 1, None) {
            let list = scored(&row[2]);
            by_scene.insert(
                s.as_str().to_string(),
                list.into_iter().map(|(n, users)| json!({"item_id": n, "users": users})).collect(),
            );
        }
    }
    Ok(Json(json!({"as_of": at, "item_id": item, "similar": by_scene})))
}

/// The scenes with rules as of `at`.
fn scenes_of(api: &Api, at: Time) -> Vec<Scene> {
    let mut scenes: Vec<Scene> = api
        .rows("rules", &[], at, usize::MAX)
        .iter()
        .filter_map(|r| if let Field::S(s) = r[0] { Some(s) } else { None })
        .collect();
    scenes.dedup();
    scenes
}

/// A user's stats, top categories and (from the recall parts, merged now) recall lists:
/// `?scene=S` for one scene, `?k=K` candidates (default: the rule's `top_k`).
async fn user(State(api): State<Api>, Path(user): Path<String>, q: Params) -> Answer {
    let q = params(q)?;
    let user = id(&user, "user")?;
    let wanted = q.get("scene").map(|s| scene(s)).transpose()?;
    let k = number(&q, "k")?;
    if let Some(k) = k.filter(|k| !(1..=MAX_ITEMS as u64).contains(k)) {
        return Err(ApiError::bad(format!("k: {k} is not within 1..={MAX_ITEMS}")));
    }
    let at = api.at(&q)?;
    let key = [Field::U(user)];
    let stats = api.row("user_stats", &key, at);
    let top = api.rows_json("user_top_categories", &key, at, MAX_ITEMS);
    let signals: Vec<Signal> = api
        .store
        .table("recall_user_signals")
        .and_then(|t| t.get(&key, at))
        .and_then(|r| match (&r[1], &r[2], &r[3]) {
            (Field::Text(c), Field::Text(e), Field::Text(b)) => Signals::parse(c, e, b),
            _ => None,
        })
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    if stats.is_none() && signals.is_empty() && top.as_ref().is_none_or(|t| t.as_array().is_some_and(Vec::is_empty)) {
        return Err(ApiError::not_found(format!("no user {user} as of {at}")));
    }
    let mut recall = Map::new();
    let parts_present = recall::PARTS.iter().all(|p| api.store.table(p).is_some());
    if parts_present {
        for row in api.rows("rules", &[], at, usize::MAX) {
            let (Field::S(s), Field::Label("user"), Field::Text(params)) = (&row[0], &row[1], &row[2]) else {
                continue;
            };
            if wanted.is_some_and(|w| w != *s) {
                continue;
            }
            let Some(mut rule) = recall::parse_rule(params) else { continue };
            if let Some(k) = k {
                rule.top_k = k as u32;
            }
            let mut hot: HashMap<u64, List> = HashMap::new();
            let mut i2i: HashMap<u64, List> = HashMap::new();
            for signal in &signals {
                let (table, owner, lists) = match *signal {
                    Signal::TopCategory(c) => ("recall_hot", c, &mut hot),
                    Signal::Engaged(a) => ("recall_i2i", a, &mut i2i),
                    Signal::Bought(_) => continue,
                };
                // One row per (scene, owner): the whole list.
                let row = api.store.table(table).and_then(|t| t.get(&[Field::S(*s), Field::U(owner)], at));
                lists.entry(owner).or_default().extend(row.iter().flat_map(|r| scored(&r[2])));
            }
            let merged = recall::merge(&rule, signals.iter().copied(), |c| hot.get(&c), |a| i2i.get(&a));
            let list: Vec<Value> = merged
                .into_iter()
                .map(|(item, score, source)| json!({"item_id": item, "score": score, "strategy": source.label()}))
                .collect();
            recall.insert(s.as_str().to_string(), Value::Array(list));
        }
    }
    Ok(Json(json!({
        "as_of": at, "user_id": user, "stats": stats, "top_categories": top,
        "recall": if parts_present { Value::Object(recall) } else { Value::Null },
    })))
}

async fn category_top(State(api): State<Api>, Path(category): Path<String>, q: Params) -> Answer {
    let q = params(q)?;
    let category = id(&category, "category")?;
    let k = count(&q, "k", MAX_ITEMS)?;
    let at = api.at(&q)?;
    let key = [Field::U(category)];
    let stats = api.row("category_stats", &key, at);
    let top = api.rows_json("category_top_items", &key, at, k);
    let hot = api.rows_json("category_hot_items", &key, at, k);
    let empty = |v: &Option<Value>| v.as_ref().is_none_or(|v| v.as_array().is_some_and(Vec::is_empty));
    if stats.is_none() && empty(&top) && empty(&hot) {
        return Err(ApiError::not_found(format!("no category {category} as of {at}")));
    }
    Ok(Json(json!({"as_of": at, "category_id": category, "stats": stats, "top_items": top, "hot_items": hot})))
}

async fn scene_traffic(State(api): State<Api>, Path(name): Path<String>, q: Params) -> Answer {
    let q = params(q)?;
    let s = scene(&name)?;
    let at = api.at(&q)?;
    let key = [Field::S(s)];
    let traffic = api.row("scene_traffic", &key, at);
    let stats = api.row("scene_stats", &key, at);
    if traffic.is_none() && stats.is_none() {
        return Err(ApiError::not_found(format!("no scene {name:?} as of {at}")));
    }
    Ok(Json(json!({"as_of": at, "scene": name, "traffic": traffic, "stats": stats})))
}

/// The curated ad set as of the last refresh, and how that refresh changed it.
async fn ads(State(api): State<Api>, q: Params) -> Answer {
    let q = params(q)?;
    let at = api.at(&q)?;
    let table = api.table("ads_curated")?;
    let set: Vec<Value> = table.scan(&[], at, usize::MAX, None).iter().map(|r| row_json(table, r)).collect();
    let refresh = api.ad_refresh_ms.max(1);
    let last = table.last_change(at).map(|(time, changes)| {
        let (mut added, mut removed): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
        let item = |r: &Row| int(&r[1]);
        let before: Vec<i64> = changes.iter().filter(|(_, d)| *d < 0).map(|(r, _)| item(r)).collect();
        let after: Vec<i64> = changes.iter().filter(|(_, d)| *d > 0).map(|(r, _)| item(r)).collect();
        added.extend(after.iter().filter(|i| !before.contains(i)));
        removed.extend(before.iter().filter(|i| !after.contains(i)));
        json!({"time": time, "added": added, "removed": removed, "changes": changes.len()})
    });
    Ok(Json(json!({
        "as_of": at, "refreshed_at": at - at % refresh, "refresh_ms": refresh, "ads": set, "last_change": last,
    })))
}

/// `GET /v1/outputs/{name}/changes?since=T&envelope=diff|upsert` as Server-Sent Events:
/// `changes` events (one per time: `{"time", "changes": [...]}`), then a `progress` event
/// `{"complete": F}` whenever every time before F is complete in the output. Without
/// `since`, the output's rows now come first (as one `changes` event). A subscriber that
/// falls [`crate::store::SUBSCRIBER_BUFFER`] updates behind gets an `error` event and is
/// disconnected; the dataflow never waits for it.
async fn changes(State(api): State<Api>, Path(name): Path<String>, q: Params) -> Result<Response, ApiError> {
    let q = params(q)?;
    let upsert = match q.get("envelope").map(String::as_str) {
        None | Some("diff") => false,
        Some("upsert") => true,
        Some(other) => return Err(ApiError::bad(format!("envelope: {other:?} is not diff or upsert"))),
    };
    let store = api.store.clone();
    let table = api.table(&name)?;
    let since = number(&q, "since")?;
    if let (Some(since), Some(oldest)) = (since, store.oldest()) {
        if since < oldest {
            return Err(ApiError {
                status: StatusCode::GONE,
                body: json!({"error": format!("since is older than the oldest time held ({oldest})"), "oldest_as_of": oldest}),
            });
        }
    }
    let (past, frontier, receiver) = table.subscribe(since);
    let last = past.last().map(|(t, _)| *t).or(since);
    let name: &'static str = table.name;
    store.metrics.subscribers.inc();
    let progress = Event::default().event("progress").data(json!({"complete": frontier}).to_string());
    let past_events: Vec<Event> =
        past.iter().map(|(t, c)| changes_event(&store, name, *t, c, upsert)).chain(std::iter::once(progress)).collect();
    struct Live {
        store: Arc<Store>,
        receiver: tokio::sync::broadcast::Receiver<Update>,
        last: Option<Time>,
        done: bool,
        _guard: Guard,
    }
    struct Guard(Arc<Store>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.metrics.subscribers.dec();
        }
    }
    let live = Live { store: store.clone(), receiver, last, done: false, _guard: Guard(store.clone()) };
    let live = stream::unfold(live, move |mut live| async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            if live.done {
                return None;
            }
            match live.receiver.recv().await {
                Ok(Update::Changes(t, c)) => {
                    if live.last.is_some_and(|l| t <= l) {
                        continue;
                    }
                    live.last = Some(t);
                    let event = changes_event(&live.store, name, t, &c, upsert);
                    return Some((Ok::<_, Infallible>(event), live));
                }
                Ok(Update::Progress(f)) => {
                    let event = Event::default().event("progress").data(json!({"complete": f}).to_string());
                    return Some((Ok(event), live));
                }
                Err(RecvError::Lagged(n)) => {
                    live.done = true;
                    live.store.metrics.dropped_subscribers.inc();
                    let event = Event::default().event("error").data(
                        json!({"error": format!("subscriber fell {n} updates behind; disconnected: resubscribe with ?since=<last complete time>")})
                            .to_string(),
                    );
                    return Some((Ok(event), live));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let events = stream::iter(past_events.into_iter().map(Ok::<_, Infallible>)).chain(live);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

use futures_util::StreamExt as _;

/// One time's changes as a `changes` event, in the diff or the upsert envelope.
fn changes_event(store: &Store, name: &str, time: Time, changes: &[(Row, isize)], upsert: bool) -> Event {
    let table = store.table(name).expect("a subscribed table");
    let records: Vec<Value> = if upsert {
        // Per key: the row that joined, or the key alone when its row only left.
        let mut by_key: BTreeMap<&[Field], Option<&Row>> = BTreeMap::new();
        for (row, diff) in changes {
            let slot = by_key.entry(&row[..table.key.min(row.len())]).or_insert(None);
            if *diff > 0 {
                *slot = Some(row);
            }
        }
        by_key
            .into_iter()
            .map(|(key, row)| match row {
                Some(row) => json!({"op": "upsert", "row": row_json(table, row)}),
                None => json!({"op": "delete", "key": key_json(table, key)}),
            })
            .collect()
    } else {
        changes.iter().map(|(row, diff)| json!({"diff": diff, "row": row_json(table, row)})).collect()
    };
    Event::default().event("changes").data(json!({"time": time, "changes": records}).to_string())
}
