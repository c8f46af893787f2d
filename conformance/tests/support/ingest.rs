//! A loopback ingest server that speaks the envelope endpoint, with fault injection.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};

pub const KEY: &str = "0123456789abcdef0123456789abcdef";

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Parse and store the envelope; 200 `{"id": ...}`.
    Accept,
    /// Store it, and answer 200 with this `X-Sentry-Rate-Limits`.
    AcceptWithRateLimits(&'static str),
    /// Answer this status without storing.
    Status(u16),
    /// 429 with these headers (`Retry-After` and/or `X-Sentry-Rate-Limits`).
    TooMany { retry_after: Option<&'static str>, rate_limits: Option<&'static str> },
    /// Answer this status with this body, without storing.
    StatusWithBody(u16, &'static str),
    /// Answer this status (3xx) with `Location: location`, without storing.
    Redirect(u16, String),
    /// Never answer.
    Hang,
    /// Answer (as `Accept`) only once the test releases a permit with [`Ingest::release`].
    Gated,
}

/// One envelope as the server parsed it.
#[derive(Debug, Clone)]
pub struct Received {
    pub auth: String,
    /// Whether the body came gzip-compressed (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// The body's size on the wire.
    pub wire_len: usize,
    pub header: Value,
    pub items: Vec<(Value, Value)>,
}

impl Received {
    /// The event item's payload, checked against Sentry's schema.
    pub fn event(&self) -> &Value {
        let event = &self.items.iter().find(|(h, _)| h["type"] == "event").expect("an event item").1;
        super::schema::assert_valid_json("ingested event", event);
        event
    }

    /// The transaction item's payload, checked against Sentry's transaction fields.
    pub fn transaction(&self) -> Option<&Value> {
        let (_, payload) = self.items.iter().find(|(h, _)| h["type"] == "transaction")?;
        super::schema::assert_valid_transaction_json("ingested transaction", payload);
        Some(payload)
    }
}

struct State_ {
    /// Client-report counts accepted: `(reason, category)` → quantity.
    reports: Mutex<BTreeMap<(String, String), u64>>,
    /// Envelopes that held client reports or sessions only (not in `requests`, never scripted).
    report_envelopes: Mutex<u64>,
    /// The `sessions` payloads accepted (standalone or riding on an accepted envelope).
    sessions: Mutex<Vec<Value>>,
    script: Mutex<VecDeque<Answer>>,
    default: Mutex<Answer>,
    received: Mutex<Vec<Received>>,
    requests: Mutex<u64>,
    gate: Semaphore,
    notify: mpsc::UnboundedSender<()>,
}

/// A running ingest server on 127.0.0.1.
pub struct Ingest {
    pub addr: SocketAddr,
    state: Arc<State_>,
    answered: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
}

impl Ingest {
    /// Starts a server on an ephemeral port, answering `default` unless scripted otherwise.
    pub async fn start(default: Answer) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(State_ {
            reports: Mutex::default(),
            report_envelopes: Mutex::default(),
            sessions: Mutex::default(),
            script: Mutex::default(),
            default: Mutex::new(default),
            received: Mutex::default(),
            requests: Mutex::default(),
            gate: Semaphore::new(0),
            notify: tx,
        });
        let app = Router::new().route("/api/{project}/envelope/", post(handle)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state, answered: tokio::sync::Mutex::new(rx) }
    }

    pub fn dsn(&self) -> String {
        format!("http://{KEY}@{}/42", self.addr)
    }

    /// The next requests get these answers, in order; then the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.script.lock().unwrap().extend(answers);
    }

    pub fn set_default(&self, answer: Answer) {
        *self.state.default.lock().unwrap() = answer;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The client reports' counts accepted so far (standalone or riding on an accepted
    /// envelope), `(reason, category)` → quantity, each report checked against Relay's shape.
    pub fn client_reports(&self) -> BTreeMap<(String, String), u64> {
        self.state.reports.lock().unwrap().clone()
    }

    /// The `sessions` payloads accepted so far (release health), in arrival order.
    pub fn sessions(&self) -> Vec<Value> {
        self.state.sessions.lock().unwrap().clone()
    }

    /// Sessions counted in every accepted `sessions` item, per status (`exited`, `errored`,
    /// `abnormal`, `crashed`), with the release they were sent for.
    pub fn session_counts(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for payload in self.sessions() {
            for bucket in payload["aggregates"].as_array().into_iter().flatten() {
                for status in ["exited", "errored", "abnormal", "crashed"] {
                    *out.entry(status.to_owned()).or_default() += bucket[status].as_u64().unwrap_or(0);
                }
            }
        }
        out
    }

    /// Envelopes that held client reports or sessions only (they are not in
    /// [`requests`](Self::requests) nor [`received`](Self::received), and are always accepted).
    pub fn report_envelopes(&self) -> u64 {
        *self.state.report_envelopes.lock().unwrap()
    }

    /// Requests seen (answered or not), client-report-only envelopes aside.
    pub fn requests(&self) -> u64 {
        *self.state.requests.lock().unwrap()
    }

    /// Lets `n` gated requests answer.
    pub fn release(&self, n: usize) {
        self.state.gate.add_permits(n);
    }

    /// Waits until `n` more requests have arrived.
    pub async fn wait_requests(&self, n: usize) {
        let mut rx = self.answered.lock().await;
        for _ in 0..n {
            rx.recv().await.unwrap();
        }
    }
}

/// A DSN whose port refuses connections (bound, then closed).
pub fn refused_dsn() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{KEY}@{addr}/42")
}

/// An envelope's header and its items (header, payload).
type Parsed = (Value, Vec<(Value, Value)>);

fn parse_envelope(body: &[u8]) -> Result<Parsed, String> {
    let mut rest = body;
    let next_line = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let line = rest[..end].to_vec();
        *rest = &rest[(end + 1).min(rest.len())..];
        Some(line)
    };
    let header: Value = serde_json::from_slice(&next_line(&mut rest).ok_or("Expected headers, got EOF")?)
        .map_err(|_| "Header not JSON".to_owned())?;
    let mut items = Vec::new();
    while let Some(line) = next_line(&mut rest) {
        if line.is_empty() {
            continue;
        }
        let item: Value = serde_json::from_slice(&line).map_err(|_| "Header not JSON".to_owned())?;
        let payload = match item["length"].as_u64() {
            Some(len) => {
                let len = len as usize;
                if rest.len() < len {
                    return Err("EOF while reading item with explicitly specified length".into());
                }
                let p = rest[..len].to_vec();
                rest = &rest[len..];
                if !rest.is_empty() && rest[0] != b'\n' {
                    return Err("Item with explicit length not terminated by newline/EOF".into());
                }
                rest = &rest[rest.len().min(1)..];
                p
            }
            None => next_line(&mut rest).unwrap_or_default(),
        };
        // An attachment's payload is its bytes as they are; every other item's is JSON.
        let payload: Value = if item["type"] == "attachment" {
            Value::String(String::from_utf8_lossy(&payload).into_owned())
        } else {
            serde_json::from_slice(&payload).map_err(|_| "payload not JSON".to_owned())?
        };
        items.push((item, payload));
    }
    Ok((header, items))
}

/// Checks a `client_report` payload against Relay's `ClientReport` (timestamp, then
/// `discarded_events` of `{reason, category, quantity}`) and adds its counts.
fn record_report(state: &State_, payload: &Value) {
    assert!(payload["timestamp"].is_number() || payload["timestamp"].is_string(), "client report timestamp: {payload}");
    let discarded = payload["discarded_events"].as_array().expect("discarded_events");
    let mut reports = state.reports.lock().unwrap();
    for d in discarded {
        let reason = d["reason"].as_str().expect("reason").to_owned();
        let category = d["category"].as_str().expect("category").to_owned();
        let quantity = d["quantity"].as_u64().expect("quantity");
        assert!(quantity > 0, "a zero count is left out: {payload}");
        *reports.entry((reason, category)).or_default() += quantity;
    }
}

/// The body, gunzipped if it says so, parsed.
fn decode(headers: &HeaderMap, body: &Bytes) -> Result<Parsed, Box<Response>> {
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let plain = if gzip {
        use std::io::Read;
        let mut plain = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain) {
            return Err(Box::new((StatusCode::BAD_REQUEST, format!("bad gzip: {e}")).into_response()));
        }
        plain
    } else {
        body.to_vec()
    };
    parse_envelope(&plain).map_err(|message| {
        Box::new((StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "message": message }))).into_response())
    })
}

/// The SDK's own bookkeeping: client reports and sessions.
fn is_report(item: &(Value, Value)) -> bool {
    item.0["type"] == "client_report" || item.0["type"] == "sessions"
}

/// Records a bookkeeping item (see [`is_report`]), checked against Relay's shapes.
fn record_bookkeeping(state: &State_, (header, payload): &(Value, Value)) {
    if header["type"] == "sessions" {
        let release = payload["attrs"]["release"].as_str().expect("sessions carry a release");
        assert!(!release.is_empty(), "{payload}");
        for bucket in payload["aggregates"].as_array().expect("aggregates") {
            assert!(bucket["started"].as_str().is_some_and(|t| t.ends_with('Z')), "{payload}");
        }
        state.sessions.lock().unwrap().push(payload.clone());
    } else {
        record_report(state, payload);
    }
}

async fn handle(
    State(state): State<Arc<State_>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = decode(&headers, &body);
    // A client report on its own: always accepted, never scripted nor counted as a request.
    if let Ok((_, items)) = &parsed {
        if !items.is_empty() && items.iter().all(is_report) {
            for item in items {
                record_bookkeeping(&state, item);
            }
            *state.report_envelopes.lock().unwrap() += 1;
            return axum::Json(serde_json::json!({})).into_response();
        }
    }
    *state.requests.lock().unwrap() += 1;
    let _ = state.notify.send(());
    let answer = state.script.lock().unwrap().pop_front().unwrap_or_else(|| state.default.lock().unwrap().clone());
    let rate_limits = match answer {
        Answer::Hang => std::future::pending().await,
        Answer::Status(code) => return StatusCode::from_u16(code).unwrap().into_response(),
        Answer::StatusWithBody(code, body) => return (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Answer::Redirect(code, location) => {
            return (StatusCode::from_u16(code).unwrap(), [("location", location)]).into_response()
        }
        Answer::TooMany { retry_after, rate_limits } => {
            let mut res = StatusCode::TOO_MANY_REQUESTS.into_response();
            if let Some(v) = retry_after {
                res.headers_mut().insert("retry-after", v.parse().unwrap());
            }
            if let Some(v) = rate_limits {
                res.headers_mut().insert("x-sentry-rate-limits", v.parse().unwrap());
            }
            return res;
        }
        Answer::Gated => {
            state.gate.acquire().await.unwrap().forget();
            None
        }
        Answer::Accept => None,
        Answer::AcceptWithRateLimits(h) => Some(h),
    };
    let auth = headers.get("x-sentry-auth").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if project != "42" || !auth.contains(&format!("sentry_key={KEY}")) || !auth.contains("sentry_version=7") {
        return (StatusCode::FORBIDDEN, "Project not found or key incorrect").into_response();
    }
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let wire_len = body.len();
    let (header, mut items) = match parsed {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    if items.iter().any(|(h, _)| h["type"] == "event") && header["event_id"].as_str().is_none_or(|id| id.len() != 32) {
        let msg = serde_json::json!({ "message": "event_id not found in envelope headers" });
        return (StatusCode::BAD_REQUEST, axum::Json(msg)).into_response();
    }
    // Reports riding along count once their envelope is accepted; `received` shows the rest.
    for item in items.iter().filter(|i| is_report(i)) {
        record_bookkeeping(&state, item);
    }
    items.retain(|i| !is_report(i));
    let id = header["event_id"].clone();
    state.received.lock().unwrap().push(Received { auth, gzip, wire_len, header, items });
    let mut res = axum::Json(serde_json::json!({ "id": id })).into_response();
    if let Some(h) = rate_limits {
        res.headers_mut().insert("x-sentry-rate-limits", h.parse().unwrap());
    }
    res
}
