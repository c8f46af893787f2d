//! Every public path users can name today still resolves: a restructure of `src/` must not
//! move an item out from under its path. (Compile-time check: if a path goes, this file fails
//! to build.)

#![allow(dead_code, unused_imports)]

// Types at the crate root.
use isoscope::{
    Bound, Breadcrumb, ClientGuard, Dsn, DsnError, DsnOrigin, EnterGuard, Envelope, EnvelopeItem, Error, Event,
    EventId, Exception, Isolation, IsolationLayer, Level, LocalTransport, Mechanism, MemoryTransport, Options, Outcome,
    Propagation, Request, RequestInfo, ResponseBody, Scope, ScopeFutureExt, ScopeHandle, Sdk, Stats, Tags, Transport,
    User,
};
// Added with the envelope model, span statuses and the counters' split.
use isoscope::protocol::{
    Attachment, AttachmentType, CheckIn, CheckInStatus, ClientReport, DiscardReason, DiscardedEvent, Log, LogAttribute,
    LogLevel, SessionAggregate, SessionAggregates, SessionAttributes,
};
use isoscope::test::{assert_isolated, bindings_on_this_thread, with_captured_events, with_captured_output};
use isoscope::{BindingCounters, DataCategory, DsnOrigin as Origin, FinishedEnvelope, ItemType, SpanStatus};
// Functions at the crate root.
use isoscope::{
    add_breadcrumb, capture_error, capture_event, capture_message, configure_scope, flush, global_scope, init,
    isolation_scope, last_event_id, set_context, set_extra, set_tag, set_user, spawn, spawn_blocking, stats,
    with_scope, with_scope_async,
};
// Public modules.
use isoscope::layer::future::ResponseFuture;
use isoscope::layer::{Isolation as LayerIsolation, IsolationLayer as LayerIsolationLayer};
use isoscope::layer::{RequestInfo as LayerRequestInfo, ResponseBody as LayerResponseBody};
use isoscope::thread::spawn as thread_spawn;
use isoscope::transport::{LocalTransport as TLocal, MemoryTransport as TMemory, Transport as TTransport};

#[cfg(feature = "axum")]
use isoscope::integrations::axum::{MissingIsolationLayer, RequestScope as AxumRequestScope};
#[cfg(feature = "tracing")]
use isoscope::integrations::tracing::BreadcrumbLayer;
#[cfg(feature = "reqwest")]
use isoscope::transport::{HttpTransport as THttp, HttpTransportBuilder as THttpBuilder};
#[cfg(feature = "axum")]
use isoscope::RequestScope;
#[cfg(feature = "reqwest")]
use isoscope::{HttpTransport, HttpTransportBuilder};

/// The root re-exports and the module paths name the same items.
#[test]
fn module_paths_and_root_reexports_are_the_same_items() {
    fn same<T: 'static, U: 'static>() -> bool {
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>()
    }
    assert!(same::<RequestInfo, LayerRequestInfo>());
    assert!(same::<IsolationLayer, LayerIsolationLayer>());
    assert!(same::<Isolation<()>, LayerIsolation<()>>());
    assert!(same::<ResponseBody<()>, LayerResponseBody<()>>());
    assert!(same::<MemoryTransport, TMemory>());
    assert!(same::<LocalTransport, TLocal>());
    #[cfg(feature = "reqwest")]
    assert!(same::<HttpTransport, THttp>() && same::<HttpTransportBuilder, THttpBuilder>());
    #[cfg(feature = "axum")]
    assert!(same::<RequestScope, AxumRequestScope>());
    let _: fn(Breadcrumb) = add_breadcrumb;
    let _: fn(std::time::Duration) -> bool = flush;
    let _: fn() -> Stats = stats;
    let _ = thread_spawn::<fn(), ()>;
}
