//! [`LocalTransport`]: JSON lines to stdout or a file, from a background thread.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::worker::{Verdict, Worker};
use super::Transport;
use crate::event::{Envelope, EnvelopeItem};
use crate::outcome::DiscardReason;

/// The default transport when no DSN is configured: one JSON event per line, written to
/// stdout, or appended to the file named by the `ISOSCOPE_OUTPUT` environment variable; with
/// `ISOSCOPE_OUTPUT=pretty`, a few readable lines per event on stderr instead — its message or
/// exception, its in-app frames, the latest breadcrumbs, tags and user — for a person reading
/// a terminal (stderr: apart from a program's own output and `tracing_subscriber::fmt()`'s,
/// which go to stdout).
///
/// Writing happens on a background thread behind a bounded queue (1,024 events), so `send`
/// never blocks, even when stdout is a full pipe; events beyond the queue are dropped and
/// counted in `stats().events_dropped_queue_full`.
///
/// ```
/// let path = std::env::temp_dir().join(format!("isoscope-doc-{}.jsonl", std::process::id()));
/// let transport = isoscope::LocalTransport::to_file(&path).unwrap();
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport)).unwrap();
/// isoscope::capture_message("to a file", isoscope::Level::Info);
/// assert!(isoscope::flush(std::time::Duration::from_secs(5)));
/// let line = std::fs::read_to_string(&path).unwrap();
/// let event: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
/// assert_eq!(event["logentry"]["formatted"], "to a file");
/// # std::fs::remove_file(&path).ok();
/// ```
pub struct LocalTransport {
    worker: Worker,
    target: String,
}

impl std::fmt::Debug for LocalTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTransport").field("target", &self.target).finish()
    }
}

const QUEUE: usize = 1024;

/// How the sink writes an event.
#[derive(Clone, Copy)]
enum Format {
    Json,
    Pretty,
}

fn with_newline(mut line: Vec<u8>) -> Vec<u8> {
    line.push(b'\n');
    line
}

impl LocalTransport {
    /// `ISOSCOPE_OUTPUT=pretty`: readable lines on stderr; another value: JSON lines appended
    /// to the file it names; unset: JSON lines on stdout.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var_os("ISOSCOPE_OUTPUT").filter(|v| !v.is_empty()) {
            Some(v) if v == "pretty" => Self::pretty().map_err(|e| e.to_string()),
            Some(path) => Self::to_file(PathBuf::from(path)).map_err(|e| format!("ISOSCOPE_OUTPUT: {e}")),
            None => Self::stdout().map_err(|e| e.to_string()),
        }
    }

    /// Readable lines on stderr (see above).
    ///
    /// ```
    /// let _guard = isoscope::init(isoscope::Options::new().transport(isoscope::LocalTransport::pretty().unwrap())).unwrap();
    /// isoscope::capture_message("shown on stderr", isoscope::Level::Warning);
    /// ```
    pub fn pretty() -> io::Result<Self> {
        Self::with_format("stderr (pretty)".to_owned(), io::stderr(), Format::Pretty)
    }

    /// Writes to stdout.
    pub fn stdout() -> io::Result<Self> {
        Self::with_writer("stdout".to_owned(), io::stdout())
    }

    /// Appends to `path` (created if missing).
    pub fn to_file(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Self::with_writer(path.display().to_string(), file)
    }

    fn with_writer<W: Write + Send + 'static>(target: String, out: W) -> io::Result<Self> {
        Self::with_format(target, out, Format::Json)
    }

    fn with_format<W: Write + Send + 'static>(target: String, mut out: W, format: Format) -> io::Result<Self> {
        let worker = Worker::spawn("isoscope-local", QUEUE, move |envelope: Envelope| {
            // The capture's deferred work, on this thread; then one JSON line per event or
            // transaction (`"type": "transaction"`), or its readable lines.
            let mut envelope = envelope.finish();
            envelope.resolve_all();
            let line = match (format, envelope.event(), envelope.transaction()) {
                (Format::Json, Some(event), _) => serde_json::to_vec(event).map(with_newline),
                (Format::Json, None, Some(transaction)) => serde_json::to_vec(transaction).map(with_newline),
                (Format::Pretty, Some(event), _) => Ok(super::pretty::event(event).into_bytes()),
                (Format::Pretty, None, Some(transaction)) => Ok(super::pretty::transaction(transaction).into_bytes()),
                (_, None, None) => Ok(Vec::new()),
            };
            let mut line = line.unwrap_or_default();
            // Log records and check-ins: one line each (`"type": "log"`, `"check_in"`).
            for item in envelope.items() {
                match (item, format) {
                    (EnvelopeItem::Logs(logs), Format::Json) => {
                        for log in logs {
                            line.extend(typed_line("log", log));
                        }
                    }
                    (EnvelopeItem::Logs(logs), Format::Pretty) => {
                        logs.iter().for_each(|log| line.extend(super::pretty::log(log).into_bytes()));
                    }
                    (EnvelopeItem::CheckIn(check_in), Format::Json) => line.extend(typed_line("check_in", check_in)),
                    (EnvelopeItem::CheckIn(c), Format::Pretty) => line.extend(super::pretty::check_in(c).into_bytes()),
                    _ => {}
                }
            }
            if line.is_empty() {
                // Nothing this sink writes (a client report, say): handled.
                return Verdict::Delivered;
            }
            match out.write_all(&line).and_then(|()| out.flush()) {
                Ok(()) => Verdict::Delivered,
                Err(_) => Verdict::Discarded(DiscardReason::NetworkError),
            }
        })?;
        Ok(Self { worker, target })
    }
}

impl Transport for LocalTransport {
    fn send(&self, envelope: Envelope) {
        if !self.worker.try_send(envelope) {
            crate::debug::once(crate::debug::Problem::QueueFull);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.worker.flush(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.worker.shutdown(timeout)
    }
}

/// An item as a JSON line: its fields and `"type"`.
fn typed_line<T: serde::Serialize>(ty: &'static str, item: &T) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Line<'a, T> {
        #[serde(rename = "type")]
        ty: &'static str,
        #[serde(flatten)]
        item: &'a T,
    }
    serde_json::to_vec(&Line { ty, item }).map(with_newline).unwrap_or_default()
}
