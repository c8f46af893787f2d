//! Process-wide counters, read with [`stats()`](crate::stats()).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::outcome::{DataCategory, DiscardReason, ItemStats, Tallies};
use crate::util::{shard, SHARDS};

#[repr(align(128))]
struct Shard(AtomicU64);

/// A counter split into cache-line-padded shards; reads add them up.
pub(crate) struct Counter([Shard; SHARDS]);

impl Counter {
    const fn new() -> Self {
        Self([const { Shard(AtomicU64::new(0)) }; SHARDS])
    }

    fn load(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

macro_rules! counters {
    (
        public { $( $(#[$doc:meta])* $name:ident ),* $(,)? }
        derived { $( $(#[$ddoc:meta])* $dname:ident ),* $(,)? }
        internal { $( $(#[$idoc:meta])* $iname:ident ),* $(,)? }
    ) => {
        pub(crate) struct Counters {
            $( pub(crate) $name: Counter, )*
            $( pub(crate) $iname: Counter, )*
        }

        pub(crate) static COUNTERS: Counters = Counters {
            $( $name: Counter::new(), )*
            $( $iname: Counter::new(), )*
        };

        /// A snapshot of isoscope's process-wide counters: the public fields are what you act
        /// on (README's troubleshooting table); the binding machinery's own counters are read
        /// with [`bindings`](Self::bindings) (and shown by `Debug`).
        ///
        /// Counters only grow. Compare two snapshots to see what happened in between.
        ///
        /// ```
        /// let before = isoscope::stats();
        /// let _child = isoscope::isolation_scope().fork();
        /// assert!(isoscope::stats().scopes_forked > before.scopes_forked);
        /// ```
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $( $(#[$doc])* pub $name: u64, )*
            $( $(#[$ddoc])* pub $dname: u64, )*
            $( $(#[$idoc])* $iname: u64, )*
            /// What became of captured items, per data category.
            items: Tallies,
        }

        /// Reads every counter (each read is atomic; the set is not a single atomic snapshot).
        pub fn stats() -> Stats {
            Stats {
                $( $name: COUNTERS.$name.load(), )*
                $( $dname: 0, )*
                $( $iname: COUNTERS.$iname.load(), )*
                items: crate::outcome::read(),
            }
            .derive()
        }

        impl Stats {
            /// What happened between `earlier` and `self`: each counter's difference.
            ///
            /// ```
            /// let before = isoscope::stats();
            /// isoscope::capture_message("no client yet", isoscope::Level::Info);
            /// assert!(isoscope::stats().since(&before).events_dropped_no_client >= 1);
            /// ```
            #[must_use]
            pub fn since(&self, earlier: &Self) -> Self {
                Self {
                    $( $name: self.$name.saturating_sub(earlier.$name), )*
                    $( $dname: 0, )*
                    $( $iname: self.$iname.saturating_sub(earlier.$iname), )*
                    items: self.items.since(&earlier.items),
                }
                .derive()
            }
        }
    };
}

/// The binding machinery's own counters (see [`Stats::bindings`]): how often the reset path
/// had work to do. Nothing here is an error to act on; a growing `leaked_purged` says some code
/// leaks `EnterGuard`s (`mem::forget`, a panic mid-way) that isoscope cleaned up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BindingCounters {
    /// Thread-local guards dropped while a newer guard was still alive (handled).
    pub out_of_order: u64,
    /// Guards dropped after their entry was already purged: ignored.
    pub stale: u64,
    /// Thread-local bindings removed because the code that made them leaked them (a forgotten
    /// guard, a panic, a guard left by another task on a reused thread).
    pub leaked_purged: u64,
    /// Guards refused because the thread's binding stack was full (the guard is a no-op).
    pub refused: u64,
}

impl Stats {
    /// Events (errors and messages) captured with a client but not delivered, for every reason
    /// (sampled, `before_send`, queue full, rate limited, network, rejected, shutdown):
    /// `items(DataCategory::Error).dropped()`.
    ///
    /// Every captured event ends up either sent or dropped for one reason: once the
    /// `ClientGuard` has been dropped, `events_captured == events_sent + events_dropped()`
    /// (over the same interval, see [`since`](Self::since)). Transactions, logs and the other
    /// kinds keep the same account in their own category ([`items`](Self::items)).
    pub fn events_dropped(&self) -> u64 {
        self.items(DataCategory::Error).dropped()
    }

    /// What became of the captured items of one data category: captured, sent, discarded per
    /// reason (the reasons client reports send), dropped at shutdown. For each category,
    /// `captured == sent + dropped` once the `ClientGuard` is dropped.
    ///
    /// ```
    /// use isoscope::DataCategory;
    /// let transport = isoscope::MemoryTransport::new();
    /// let before = isoscope::stats();
    /// let guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
    /// isoscope::capture_message("one", isoscope::Level::Warning);
    /// drop(guard);
    /// let errors = isoscope::stats().since(&before).items(DataCategory::Error);
    /// assert_eq!((errors.captured(), errors.sent(), errors.dropped()), (1, 1, 0));
    /// ```
    pub fn items(&self, category: DataCategory) -> ItemStats {
        self.items.row(category)
    }

    /// Fills the event fields from the error category's row.
    fn derive(mut self) -> Self {
        use DiscardReason as R;
        let errors = self.items(DataCategory::Error);
        self.events_captured = errors.captured();
        self.events_sent = errors.sent();
        self.events_dropped_sampled = errors.discarded(R::SampleRate);
        self.events_dropped_before_send = errors.discarded(R::BeforeSend) + errors.discarded(R::EventProcessor);
        self.events_dropped_queue_full = errors.discarded(R::QueueOverflow);
        self.events_dropped_rate_limited = errors.discarded(R::RatelimitBackoff);
        self.events_dropped_network = errors.discarded(R::NetworkError) + errors.discarded(R::InternalSdkError);
        self.events_dropped_rejected = errors.discarded(R::SendError);
        self.events_dropped_shutdown = errors.dropped_at_shutdown();
        self.transactions_captured = self.items(DataCategory::Transaction).captured();
        debug_assert_eq!(
            errors.dropped(),
            [
                self.events_dropped_sampled,
                self.events_dropped_before_send,
                self.events_dropped_queue_full,
                self.events_dropped_rate_limited,
                self.events_dropped_network,
                self.events_dropped_rejected,
                self.events_dropped_shutdown
            ]
            .iter()
            .sum::<u64>()
                + errors.discarded(R::CacheOverflow)
                + errors.discarded(R::BufferOverflow)
                + errors.discarded(R::InsufficientData)
                + errors.discarded(R::Backpressure)
        );
        self
    }

    /// The binding machinery's own counters.
    ///
    /// ```
    /// let before = isoscope::stats();
    /// isoscope::isolation_scope().fork().run(|| {
    ///     std::mem::forget(isoscope::isolation_scope().fork().enter()); // leaked inside `run`
    /// }); // purged when `run` ends
    /// assert_eq!(isoscope::stats().since(&before).bindings().leaked_purged, 1);
    /// assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
    /// ```
    pub fn bindings(&self) -> BindingCounters {
        BindingCounters {
            out_of_order: self.bindings_out_of_order,
            stale: self.bindings_stale,
            leaked_purged: self.leaked_bindings_purged,
            refused: self.bindings_refused,
        }
    }
}

counters! {
  public {
    /// Scopes forked (per request by the layer, per spawn, and by `ScopeHandle::fork`).
    scopes_forked,
    /// Requests whose response completed (end of body or body dropped after end of stream).
    requests_completed,
    /// Requests whose future or body was dropped before completion.
    requests_cancelled,
    /// Requests whose handler panicked.
    requests_panicked,
    /// Delivery attempts retried after a connection failure, timeout or 5xx answer.
    events_retried,
    /// Events dropped because no client was initialised.
    events_dropped_no_client,
    /// Breadcrumbs dropped by `before_breadcrumb`.
    breadcrumbs_dropped,
    /// Writes (tags, breadcrumbs, user, ...) from a tokio task bound to no scope (a plain
    /// `tokio::spawn`): kept in a scope of that task only, never in the process default that
    /// requests fork.
    writes_unbound,
    /// Scopes of unbound tasks dropped because more than 1,024 such tasks had written.
    unbound_scopes_evicted,
    /// Incoming `sentry-trace`, `traceparent` or `baggage` headers that were malformed (wrong
    /// lengths, not hex, all-zero ids, oversized): ignored, the request starts a new trace.
    trace_headers_invalid,
    /// Child spans dropped: past 1,000 in one transaction, or ended after it was sent.
    spans_dropped,
  }
  derived {
    /// Events (errors and messages) that entered the capture pipeline with a client bound.
    events_captured,
    /// Events delivered by the transport (accepted by the server, written, kept in memory, or
    /// handed to a custom transport that reported no other outcome). Transactions count in
    /// [`items`](Stats::items)`(DataCategory::Transaction)`, not here.
    events_sent,
    /// Events dropped by `sample_rate`.
    events_dropped_sampled,
    /// Events dropped by `before_send` or an event processor.
    events_dropped_before_send,
    /// Events dropped because the transport's queue was full.
    events_dropped_queue_full,
    /// Events dropped because the server was rate limiting (announced by the server).
    events_dropped_rate_limited,
    /// Events dropped after connection failures, timeouts or 5xx answers outlasted the retries
    /// (or, for the local sink, a failed write; or a transport that panicked).
    events_dropped_network,
    /// Events the server rejected (4xx other than 429, such as 400, 403 or 413).
    events_dropped_rejected,
    /// Events dropped at shutdown: still queued or being delivered when the `ClientGuard` was
    /// dropped and its `shutdown_timeout` ran out.
    events_dropped_shutdown,
    /// Transactions captured: sampled requests, and (counted as dropped by sampling) the
    /// requests sampling left out while tracing is on.
    transactions_captured,
  }
  internal {
    /// See [`BindingCounters::out_of_order`].
    bindings_out_of_order,
    /// See [`BindingCounters::stale`].
    bindings_stale,
    /// See [`BindingCounters::leaked_purged`].
    leaked_bindings_purged,
    /// See [`BindingCounters::refused`].
    bindings_refused,
  }
}

pub(crate) fn incr(counter: &Counter) {
    counter.0[shard()].0.fetch_add(1, Ordering::Relaxed);
}
