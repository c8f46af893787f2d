//! [`Stacktrace`], [`Frame`] and [`Thread`]: where an exception happened, as Sentry's
//! `stacktrace` and `threads` interfaces, with frames that may still be waiting to be resolved.
//!
//! A stack captured by isoscope holds only instruction addresses at first (a cheap walk of the
//! stack at the panic or capture site); turning them into function names, files and lines
//! (symbolication) is slow, so it happens later, when the event is serialized on the
//! transport's thread, or when [`Stacktrace::resolve`] is called. The machinery that captures
//! and resolves lives in `crate::stack`; this module only holds the result.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One frame of a [`Stacktrace`], as Sentry's `frame` interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Frame {
    /// The function, demangled, without its hash (`myapp::orders::load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The module path the function lives in (`myapp::orders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The source file's name (`orders.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The source file's full path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_path: Option<String>,
    /// Line number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u32>,
    /// Column number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colno: Option<u32>,
    /// Whether the frame is the application's own code (`false` for std, tokio, hyper, axum,
    /// tower, isoscope, ...; see `Options::in_app_include`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
    /// The instruction address, as a `0x` hex string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_addr: Option<String>,
}

/// Turns captured addresses into frames: implemented by `crate::stack`.
pub(crate) trait ResolveFrames: Send + Sync + 'static {
    /// The frames, oldest first.
    fn resolve(&self) -> Vec<Frame>;
}

/// A capture waiting to be resolved, shared by the clones of an event.
struct Pending {
    source: Box<dyn ResolveFrames>,
    frames: OnceLock<Vec<Frame>>,
}

impl Pending {
    fn frames(&self) -> &[Frame] {
        self.frames.get_or_init(|| self.source.resolve())
    }
}

impl Frame {
    /// A frame in `function` (its other fields unknown until set).
    pub fn new(function: impl Into<String>) -> Self {
        Self { function: Some(function.into()), ..Self::default() }
    }
}

/// A stack trace: frames oldest first, the frame where it happened last (Sentry's order).
///
/// ```
/// use isoscope::{Frame, Stacktrace};
/// let mut main = Frame::new("myapp::main");
/// main.in_app = Some(true);
/// let mut load = Frame::new("myapp::load");
/// load.lineno = Some(12);
/// let trace = Stacktrace::new(vec![main, load]);
/// let json = serde_json::to_value(&trace).unwrap();
/// assert_eq!(json["frames"][1]["function"], "myapp::load");
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Stacktrace {
    /// The frames, oldest first. Empty while a captured stack is still unresolved: call
    /// [`resolve`](Self::resolve) to read them earlier than the transport does.
    pub frames: Vec<Frame>,
    pending: Option<Arc<Pending>>,
}

impl Stacktrace {
    /// A stack trace of the given frames (oldest first).
    pub fn new(frames: Vec<Frame>) -> Self {
        Self { frames, pending: None }
    }

    /// A captured stack to be resolved later.
    pub(crate) fn pending(source: impl ResolveFrames) -> Self {
        Self {
            frames: Vec::new(),
            pending: Some(Arc::new(Pending { source: Box::new(source), frames: OnceLock::new() })),
        }
    }

    /// How many frames it has, or for a captured stack not yet resolved a typical count (64):
    /// for a queue's estimate of its memory.
    pub(crate) fn frame_count(&self) -> usize {
        match &self.pending {
            Some(p) => p.frames.get().map_or(64, Vec::len),
            None => self.frames.len(),
        }
    }

    /// Whether the frames are known (a captured stack not yet resolved is not).
    pub fn is_resolved(&self) -> bool {
        self.pending.as_ref().is_none_or(|p| p.frames.get().is_some())
    }

    /// Resolves a captured stack now (symbol names, files and lines: milliseconds the first
    /// time a binary's debug info is read), so that [`frames`](Self::frames) can be read.
    /// Serializing the event does it too; a no-op for a resolved one.
    pub fn resolve(&mut self) {
        if let Some(pending) = self.pending.take() {
            if self.frames.is_empty() {
                self.frames = pending.frames().to_vec();
            }
        }
    }

    /// The frames, resolving them if they are not yet.
    fn effective(&self) -> &[Frame] {
        match &self.pending {
            Some(p) if self.frames.is_empty() => p.frames(),
            _ => &self.frames,
        }
    }
}

impl fmt::Debug for Stacktrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Stacktrace");
        if self.is_resolved() {
            s.field("frames", &self.effective());
        } else {
            s.field("frames", &"<not yet resolved>");
        }
        s.finish()
    }
}

impl PartialEq for Stacktrace {
    fn eq(&self, other: &Self) -> bool {
        self.effective() == other.effective()
    }
}

impl Serialize for Stacktrace {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("frames", self.effective())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Stacktrace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            frames: Vec<Frame>,
        }
        Ok(Self::new(Wire::deserialize(d)?.frames))
    }
}

/// A thread in an event's `threads` interface: where a message event captured with
/// `Options::attach_stacktrace` carries its capture site's stack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Thread {
    /// The thread's name, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether this is the thread that captured the event.
    #[serde(default)]
    pub current: bool,
    /// Its stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<Stacktrace>,
}
