//! The symbolizer's own thread: resolves captured addresses into frames, keeps the parsed debug
//! info warm while stacks keep coming, and gives its memory back to the system once idle.
//!
//! Resolving a stack parses the binary's debug info: tens of MiB of heap for a large server
//! binary (63 MiB for a 62 MB binary with line tables). Freeing it is not enough for glibc's
//! allocator to return it: a freed chunk parked in a thread's cache (tcache) or a fast bin counts
//! as used, and one such chunk near the top of the heap keeps the whole heap below it resident —
//! measured: 62–77 MiB still resident 10 s after a panic event when the transport's own thread
//! resolved and freed. So every allocation of a resolution is made, and freed, by this thread
//! alone (its own arena), and the frames handed out are copied by the caller into its own memory
//! (the originals come back here to be freed). After [`KEEP_SYMBOLS`] without a request the
//! thread drops the caches, [`arena::release`]s what its thread caches pin, and exits; the next
//! stack starts a new one.
//!
//! ```text
//!  caller (transport thread)              isoscope-syms (started on demand)
//!   resolve(ips) ──Request{ips, reply}──▶  backtrace::resolve → frames
//!   frames.clone() ◀────── frames ───────  (caches kept while requests keep coming)
//!   originals ────────── Request::Free ──▶ dropped here
//!                                          idle KEEP_SYMBOLS: clear caches, arena::release, exit
//! ```

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Mutex;
use std::time::Duration;

use crate::event::Frame;

/// How long the parsed debug info is kept after the last stack was resolved: long enough that a
/// stream of events with stacks keeps it warm (a resolution with it costs ~1 ms, a cold one
/// ~100 ms for a 56 MB binary), short enough that a server which reported a panic gives the
/// memory back soon after.
const KEEP_SYMBOLS: Duration = Duration::from_secs(10);

enum Request {
    /// Resolve these addresses; the frames (innermost first, unfinished) go to `reply`.
    Resolve { ips: Vec<usize>, reply: SyncSender<Vec<Frame>> },
    /// Frames this thread allocated, to be freed here.
    Free(Vec<Frame>),
}

/// The running symbolizer's inbox (`None`: no thread runs). The thread takes it away under the
/// lock when it decides to exit, so no request is ever sent to a thread that is leaving.
static INBOX: Mutex<Option<Sender<Request>>> = Mutex::new(None);

/// Resolves `ips` on the symbolizer's thread with `resolve_here`, the frames copied into the
/// calling thread's memory. Resolves on the calling thread if no symbolizer thread can start.
pub(super) fn resolve(ips: &[usize], resolve_here: fn(&[usize]) -> Vec<Frame>) -> Vec<Frame> {
    // A rendezvous slot allocated here: an unbounded channel would allocate its first block in
    // the symbolizer's send, and this thread would free it.
    let (reply, frames) = mpsc::sync_channel(1);
    let Some(inbox) = send(Request::Resolve { ips: ips.to_vec(), reply }, resolve_here) else {
        return resolve_here(ips);
    };
    match frames.recv() {
        Ok(theirs) => {
            let ours = theirs.clone();
            let _ = inbox.send(Request::Free(theirs));
            ours
        }
        // The thread is gone (it panicked in the resolution): resolve here, as without it.
        Err(_) => resolve_here(ips),
    }
}

/// Sends `request` to the running symbolizer, starting one if none runs; the inbox it went to.
fn send(request: Request, resolve_here: fn(&[usize]) -> Vec<Frame>) -> Option<Sender<Request>> {
    let mut inbox = INBOX.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = inbox.as_ref() {
        if tx.send(request).is_ok() {
            return Some(tx.clone());
        }
        // Its thread died (a panic in a resolution): start another.
        *inbox = None;
        return None;
    }
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("isoscope-syms".to_owned()).spawn(move || serve(rx, resolve_here));
    if spawned.is_err() {
        return None;
    }
    let _ = tx.send(request);
    *inbox = Some(tx.clone());
    Some(tx)
}

/// The symbolizer thread's loop.
fn serve(rx: Receiver<Request>, resolve_here: fn(&[usize]) -> Vec<Frame>) {
    // Background work, as the transports' (a cold resolution is ~100 ms of CPU): nice 10, so a
    // burst of panics on a saturated server does not take the requests' CPU.
    crate::util::lower_thread_priority(false);
    let reserve = arena::Reserve::new();
    loop {
        let request = match rx.recv_timeout(KEEP_SYMBOLS) {
            Ok(request) => request,
            Err(RecvTimeoutError::Timeout) => {
                let mut inbox = INBOX.lock().unwrap_or_else(|e| e.into_inner());
                match rx.try_recv() {
                    Ok(request) => request, // arrived just now: serve it first
                    Err(_) => {
                        *inbox = None;
                        break;
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match request {
            Request::Resolve { ips, reply } => {
                let _ = reply.send(resolve_here(&ips));
            }
            Request::Free(frames) => drop(frames),
        }
    }
    // Frames a caller took but has not yet sent back are freed wherever it drops them.
    while let Ok(request) = rx.try_recv() {
        drop(request);
    }
    drop(rx);
    backtrace::clear_symbol_cache();
    reserve.release();
}

/// What glibc's thread caches pin, given back before the symbolizer's thread exits.
mod arena {
    /// Per-thread cache size classes of glibc's malloc (tcache bins: requests of 1 to 1,032
    /// bytes in steps of 16).
    const CLASSES: usize = 64;
    /// Chunks a tcache bin holds (glibc's default `tcache_count`).
    const PER_CLASS: usize = 7;

    fn request_size(class: usize) -> usize {
        24 + 16 * class
    }

    /// `malloc`s (not `calloc`s: glibc's `calloc` bypasses the thread cache) a block of every
    /// class, as many as a cache bin holds.
    fn fill() -> Vec<Vec<u8>> {
        let mut blocks = Vec::with_capacity(CLASSES * PER_CLASS);
        for class in 0..CLASSES {
            for _ in 0..PER_CLASS {
                blocks.push(Vec::with_capacity(request_size(class)));
            }
        }
        std::hint::black_box(blocks)
    }

    /// A thread cache's worth of small blocks taken when the thread starts — before the debug
    /// info, so low in the heap — to stand in for the chunks the cache holds when it ends.
    pub(super) struct Reserve(Vec<Vec<u8>>);

    impl Reserve {
        pub(super) fn new() -> Self {
            Self(fill())
        }

        /// Called last, once the caches were freed: takes every chunk the thread cache holds
        /// (they may sit high in the heap), puts the low reserve in their place, frees the taken
        /// ones past the now full cache into the heap's bins, and makes one allocation large
        /// enough that glibc consolidates its fast bins and trims the free top of the heap.
        /// On other allocators it is a few hundred small allocations, nothing more.
        pub(super) fn release(self) {
            let taken = fill();
            drop(self.0);
            drop(taken);
            // Above glibc's fast-bin consolidation threshold (64 KiB), below its smallest mmap
            // threshold (128 KiB): served from, and freed into, this arena.
            let large = Vec::<u8>::with_capacity(96 << 10);
            drop(std::hint::black_box(large));
        }
    }
}
