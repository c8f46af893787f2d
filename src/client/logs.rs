//! Structured logs: a record made on the calling thread ([`record`]: a snapshot of the scope
//! and a push into the client's bounded [`LogBuffer`]), and the batching thread that turns the
//! records into `log` envelope items — 100 per envelope, or what is there after 5 s, and at
//! flush and shutdown.
//!
//! ```text
//!  logs::info!(..) / tracing / log ─▶ record ─▶ LogBuffer (≤ 1,000; more: buffer_overflow)
//!                                                 │ 100 records, 5 s, flush
//!                                   batching thread ─▶ attributes, before_send_log ─▶ transport
//! ```

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::Core;
use crate::bind;
use crate::event::{Breadcrumb, Envelope, EnvelopeItem, LogAttribute, LogLevel};
use crate::outcome::{DataCategory, DiscardReason};
use crate::scope::Scope;

/// Records per envelope (Sentry's SDKs batch 100).
pub(crate) const BATCH: usize = 100;
/// Records waiting at most; more are dropped and counted (`buffer_overflow`).
pub(crate) const MAX_PENDING: usize = 1_000;
/// The longest a record waits for its batch to fill.
const INTERVAL: Duration = Duration::from_secs(5);

/// Whether any client sends logs: one relaxed load for a log call when none does.
static ANY_ENABLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set on the batching thread: what it logs (or what the HTTP stack logs for it) is never
    /// turned into more logs.
    static ON_BATCHER: Cell<bool> = const { Cell::new(false) };
}

/// Notes that a client with logs on exists.
pub(crate) fn note_enabled(on: bool) {
    if on {
        ANY_ENABLED.store(true, Ordering::Relaxed);
    }
}

/// Whether a log call may be recorded at all (a client has logs on); the macros check this
/// before formatting anything.
#[inline]
pub(crate) fn enabled() -> bool {
    ANY_ENABLED.load(Ordering::Relaxed)
}

/// What a log record says: its own text and attributes, or those of the breadcrumb made of
/// the same record (shared with the scope: nothing copied on the logging thread).
pub(crate) enum LogSource {
    /// A body and typed attributes (the macros, `logs::log`).
    Text(String, Vec<(Cow<'static, str>, LogAttribute)>),
    /// A breadcrumb's message and data (`tracing`, `log`): converted on the batching thread.
    #[cfg_attr(not(any(feature = "tracing", feature = "log")), allow(dead_code))]
    Crumb(Arc<Breadcrumb>),
}

/// Where a record was made: its logger (target) and place in the code.
pub(crate) struct Code {
    pub(crate) target: Cow<'static, str>,
    pub(crate) file: Option<&'static str>,
    pub(crate) line: Option<u32>,
}

/// A log record as the calling thread made it: what it said, and the scope it was said in.
pub(crate) struct PendingLog {
    /// When it was made, on the monotonic clock (a reading of the wall clock costs more; the
    /// batching thread converts it against the wall clock read when it sends).
    pub(super) at: Instant,
    pub(super) level: LogLevel,
    pub(super) source: LogSource,
    /// The message template and its parameters, when the record was formatted from one.
    pub(super) template: Option<(Cow<'static, str>, Vec<LogAttribute>)>,
    pub(super) code: Option<Code>,
    /// `sentry.origin`: `manual`, `auto.log.tracing`, `auto.log.log`.
    pub(super) origin: &'static str,
    /// The isolation scope (tags, user, the request's trace), an O(1) snapshot.
    pub(super) scope: Scope,
    /// The OpenTelemetry span active when it was made: its trace wins over the request's.
    pub(super) otel: Option<crate::trace::OtelSpan>,
}

impl PendingLog {
    /// About the bytes it will take on the wire (`log_byte` of a dropped record).
    fn estimated_bytes(&self) -> u64 {
        let text = match &self.source {
            LogSource::Text(body, attributes) => {
                body.len() + attributes.iter().map(|(k, v)| k.len() + v.text_len() + 32).sum::<usize>()
            }
            LogSource::Crumb(crumb) => {
                let data: usize = crumb.data.iter().map(|(k, v)| k.len() + 48 + v.as_str().map_or(0, str::len)).sum();
                crumb.message.as_deref().map_or(0, str::len) + data
            }
        };
        (text + 256) as u64
    }
}

/// Records a log with the active scope, if the client in force sends logs.
pub(crate) fn record(
    level: LogLevel,
    source: LogSource,
    template: Option<(Cow<'static, str>, Vec<LogAttribute>)>,
    code: Option<Code>,
    origin: &'static str,
) {
    if !enabled() || ON_BATCHER.with(Cell::get) || crate::transport::on_worker_thread() {
        return;
    }
    // No breadcrumbs: a log does not carry them, and sharing the ring would make the next
    // breadcrumb a copy of it.
    let scope = bind::find(bind::Access::Read).snapshot_without_breadcrumbs();
    let Some(core) = super::capture::client_for(bind::current().as_deref(), &scope) else { return };
    if !core.options.enable_logs {
        return;
    }
    let otel = crate::trace::otel_span();
    core.logs.push(&core, PendingLog { at: Instant::now(), level, source, template, code, origin, scope, otel });
}

/// A client's records waiting for their batch, and the batching thread's signals.
#[derive(Default)]
pub(crate) struct LogBuffer {
    state: Mutex<State>,
    wake: Condvar,
    /// Held while a batch taken from `state` is turned into envelopes: a flush takes it to
    /// know that every record taken before it reached the transport.
    sending: Mutex<()>,
}

#[derive(Default)]
struct State {
    pending: Vec<PendingLog>,
    /// When the oldest pending record was pushed.
    oldest: Option<Instant>,
    /// The last batch's emptied `Vec`, for the next records.
    spare: Option<Vec<PendingLog>>,
    started: bool,
    closed: bool,
}

impl State {
    /// The pending records, leaving room for a batch (allocated here, on the thread that
    /// sends, rather than grown record by record on the threads that log).
    fn take_pending(&mut self) -> Vec<PendingLog> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let next = self.spare.take().unwrap_or_else(|| Vec::with_capacity(BATCH));
        std::mem::replace(&mut self.pending, next)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LogBuffer {
    /// Adds a record; a full buffer drops it (counted). The batching thread starts with the
    /// first record and is woken when a batch is full.
    fn push(self: &Arc<Self>, core: &Arc<Core>, log: PendingLog) {
        let mut state = lock(&self.state);
        if state.closed || state.pending.len() >= MAX_PENDING {
            drop(state);
            let items = [(DataCategory::LogItem, 1), (DataCategory::LogByte, log.estimated_bytes())];
            core.recorder.dropped_unsent(&items, DiscardReason::BufferOverflow);
            return;
        }
        state.pending.push(log);
        state.oldest.get_or_insert_with(Instant::now);
        // Woken once, when the batch fills (a notification is a system call: not one per
        // record while the thread is busy sending).
        let full = state.pending.len() == BATCH;
        if !std::mem::replace(&mut state.started, true) {
            drop(state);
            self.start(Arc::downgrade(core));
            return;
        }
        drop(state);
        if full {
            self.wake.notify_one();
        }
    }

    fn start(self: &Arc<Self>, core: Weak<Core>) {
        let buffer = self.clone();
        let spawned = std::thread::Builder::new().name("isoscope-logs".into()).spawn(move || {
            ON_BATCHER.with(|b| b.set(true));
            buffer.run(&core);
        });
        if spawned.is_err() {
            // No thread: records are sent at flush and shutdown (and when a batch is full).
            lock(&self.state).started = false;
        }
    }

    /// The batching thread: waits for a full batch or the oldest record's 5 s, sends, again;
    /// ends when the client is gone.
    fn run(&self, core: &Weak<Core>) {
        loop {
            let mut state = lock(&self.state);
            loop {
                if state.closed {
                    return;
                }
                let waited = state.oldest.map(|t| t.elapsed());
                if state.pending.len() >= BATCH || waited.is_some_and(|w| w >= INTERVAL) {
                    break;
                }
                let timeout = waited.map_or(INTERVAL, |w| INTERVAL - w);
                state = self.wake.wait_timeout(state, timeout).unwrap_or_else(PoisonError::into_inner).0;
            }
            drop(state);
            // `sending` before `state`, as `drain` takes them.
            let _sending = lock(&self.sending);
            let batch = {
                let mut state = lock(&self.state);
                state.oldest = None;
                state.take_pending()
            };
            let Some(core) = core.upgrade() else { return };
            self.send(&core, batch);
        }
    }

    /// Sends what is pending now, on the calling thread (flush, shutdown), after any batch the
    /// batching thread is sending.
    pub(crate) fn drain(&self, core: &Core) {
        let _sending = lock(&self.sending);
        let batch = {
            let mut state = lock(&self.state);
            state.oldest = None;
            state.take_pending()
        };
        self.send(core, batch);
    }

    /// Sends `batch` and keeps its emptied `Vec` for the next records: the buffer's capacity
    /// is allocated once (up to the largest backlog seen, at most 1,000 records), not grown
    /// record by record on the threads that log.
    fn send(&self, core: &Core, mut batch: Vec<PendingLog>) {
        if batch.is_empty() {
            return;
        }
        send(core, &mut batch);
        lock(&self.state).spare = Some(batch);
    }

    /// The client is gone: the batching thread ends.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_all();
    }
}

/// Turns records into logs (attributes, `before_send_log`) and sends them, 100 per envelope;
/// `batch` is left empty.
fn send(core: &Core, batch: &mut Vec<PendingLog>) {
    let recorder = &core.recorder;
    let mut logs = Vec::with_capacity(batch.len());
    let now = (crate::util::now_f64(), Instant::now());
    for pending in batch.drain(..) {
        let log = super::log_attrs::to_log(pending, core, now);
        let log = match &core.options.before_send_log {
            None => log,
            Some(hook) => {
                let items = [(DataCategory::LogItem, 1), (DataCategory::LogByte, log.estimated_bytes())];
                let Some(kept) = hook(log) else {
                    recorder.dropped_unsent(&items, DiscardReason::BeforeSend);
                    continue;
                };
                kept
            }
        };
        logs.push(log);
    }
    while !logs.is_empty() {
        let rest = logs.split_off(logs.len().min(BATCH));
        let mut envelope = Envelope::new();
        // A new envelope takes one container: never refused.
        let _ = envelope.push(EnvelopeItem::Logs(logs));
        core.transport.send(envelope.accounted(recorder.clone()));
        logs = rest;
    }
}
