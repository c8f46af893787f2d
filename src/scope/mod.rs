//! The data model of a unit of work: [`Scope`] (its fields, the O(1) copy-on-write fork), the
//! breadcrumb ring, the request info it carries, and the merge of scopes into an event.
//!
//! Values only: nothing here binds, locks or sends. A [`Scope`] is shared and locked through a
//! `ScopeHandle` (`crate::bind`); the capture pipeline (`crate::client`) merges the scopes
//! in force into an event with [`apply_scopes`].
//!
//! ```text
//!   Scope { level, tags, breadcrumbs, request, rest: Arc<Rest> }
//!             │      │        │          └─ RequestInfo (request_info.rs) ── RequestSnapshot (snapshot.rs)
//!             │      │        └─ ring of breadcrumbs, in place or Arc (breadcrumbs.rs)
//!             └──────┴─ Field: Empty │ Own(T) │ Shared(Arc<T>)   (field.rs)
//!   apply_scopes(event, [current, isolation, global])             (merge.rs)
//! ```

mod attachments;
mod breadcrumbs;
mod client_ip;
mod field;
mod merge;
mod recorder;
mod request_body;
mod request_info;
mod snapshot;
mod tags;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use breadcrumbs::Crumb;
pub(crate) use breadcrumbs::{set_max_breadcrumbs, DEFAULT_MAX_BREADCRUMBS};
use field::{Field, RequestField};
pub(crate) use merge::apply_scopes;
pub(crate) use recorder::Recorder;
#[cfg(feature = "axum")]
pub(crate) use request_body::request_body_limit;
pub use request_body::RequestBodySize;
pub(crate) use request_body::{set_request_body_size, BodySlot};
pub use request_info::RequestInfo;
pub(crate) use request_info::{MAX_HEADERS, MAX_HEADER_VALUE};

use crate::event::{Attachment, Event, Level, User};
use crate::trace::SpanId;

/// An event processor: may edit an event or drop it by returning `None`.
pub(crate) type EventProcessor = Arc<dyn Fn(Event) -> Option<Event> + Send + Sync>;

pub use tags::{Iter as TagsIter, Tags};

/// Data attached to every event captured while the scope is active: level, transaction, user,
/// tags, extra, contexts, fingerprint, breadcrumbs and request info.
///
/// A `Scope` is a value. [`fork`](Self::fork) copies it in O(1) whatever it holds: the fields
/// become shared copy-on-write, and the first write to a field after a fork copies that field
/// only (if the other side still holds it). Until a scope is forked, its fields are owned and
/// written in place, which is what makes a request's first tag or breadcrumb cheap. `clone`
/// is O(1) for shared fields and copies owned ones. Scopes are shared between tasks through a
/// [`ScopeHandle`](crate::ScopeHandle), and usually edited through the free functions
/// ([`set_tag`](crate::set_tag), [`configure_scope`](crate::configure_scope), ...).
///
/// ```
/// use isoscope::{Breadcrumb, Scope};
///
/// let mut parent = Scope::default();
/// parent.set_tag("region", "eu");
/// let mut child = parent.fork(); // O(1)
/// child.set_tag("region", "us");
/// child.add_breadcrumb(Breadcrumb::new("only in the child"));
/// assert_eq!(parent.tag("region"), Some("eu"));
/// assert_eq!(parent.breadcrumbs().count(), 0);
/// assert_eq!(child.tag("region"), Some("us"));
/// ```
pub struct Scope {
    level: Option<Level>,
    tags: Field<Tags>,
    /// Each breadcrumb is held in place until the ring is shared, then shared, so a fork
    /// copying the ring (on its first write) and the merge at capture copy pointers, not
    /// breadcrumbs (see `breadcrumbs::Crumb`).
    breadcrumbs: Field<VecDeque<Crumb>>,
    request: RequestField,
    /// The fields a request's own scope rarely sets, behind one pointer: a request's scope is
    /// smaller, built with fewer stores and dropped with fewer checks (`None`: all empty).
    rest: Option<Arc<Rest>>,
}

/// The rarely written fields of a [`Scope`]. Shared between forks: once an `Arc<Rest>` has
/// two holders, its fields are all shared too (see [`Scope::fork`]), so the copy made by the
/// first write after a fork (`Arc::make_mut`) is O(1), and the written field is then copied
/// (if the other side still holds it) as every field is.
#[derive(Clone, Default)]
struct Rest {
    transaction: Option<Arc<str>>,
    user: Option<Arc<User>>,
    extra: Field<BTreeMap<String, Value>>,
    contexts: Field<BTreeMap<String, Value>>,
    fingerprint: Option<Arc<[String]>>,
    processors: Field<Vec<EventProcessor>>,
    /// A client bound to this scope (its forks inherit it): events captured with it go there
    /// instead of to the process-wide client. Opaque here (the client module knows its type).
    client: Option<ScopeClient>,
    /// The span open here (`start_span`), and its parent: the parent of the next span started
    /// here or in work spawned from here, and the span of events captured here.
    span: Option<(SpanId, SpanId)>,
    /// Files every event captured here carries (forks share the slice).
    attachments: Option<Arc<[Attachment]>>,
}

/// A client bound to a scope, as the scope keeps it.
pub(crate) type ScopeClient = Arc<dyn std::any::Any + Send + Sync>;

/// What an empty scope reads.
static EMPTY_REST: Rest = Rest {
    transaction: None,
    user: None,
    extra: Field::Empty,
    contexts: Field::Empty,
    fingerprint: None,
    processors: Field::Empty,
    client: None,
    span: None,
    attachments: None,
};

impl Rest {
    fn is_empty(&self) -> bool {
        self.transaction.is_none()
            && self.user.is_none()
            && self.extra.is_empty()
            && self.contexts.is_empty()
            && self.fingerprint.is_none()
            && self.processors.is_empty()
            && self.client.is_none()
            && self.span.is_none()
            && self.attachments.is_none()
    }

    /// Whether no field is owned (copying it is O(1)).
    fn is_shared(&self) -> bool {
        !(self.extra.is_owned() || self.contexts.is_owned() || self.processors.is_owned())
    }

    /// Makes every field shared, so copies of this `Rest` are O(1).
    fn make_shared(&mut self) {
        self.extra.make_shared();
        self.contexts.make_shared();
        self.processors.make_shared();
    }

    fn localized(&self) -> Self {
        Self {
            transaction: self.transaction.as_deref().map(Arc::from),
            user: self.user.as_deref().cloned().map(Arc::new),
            extra: self.extra.localized(),
            contexts: self.contexts.localized(),
            fingerprint: self.fingerprint.as_deref().map(Arc::from),
            processors: self.processors.localized(),
            client: self.client.clone(),
            span: self.span,
            attachments: self.attachments.clone(),
        }
    }
}

/// Whether transaction names put the request's method before the route (set by `init`).
static METHOD_IN_NAMES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets whether transaction names put the method before the route (`init`).
pub(crate) fn set_method_in_names(on: bool) {
    METHOD_IN_NAMES.store(on, std::sync::atomic::Ordering::Relaxed);
}

impl Clone for Scope {
    /// O(1) for shared fields; copies owned ones (see [`Scope::fork`] for an O(1) copy).
    fn clone(&self) -> Self {
        Self {
            level: self.level,
            tags: self.tags.clone(),
            breadcrumbs: self.breadcrumbs.clone(),
            request: self.request.clone(),
            // Shared as is only if its fields are all shared (see `Rest`): two holders of a
            // `Rest` with an owned field would copy all of its fields on the first write.
            rest: self.rest.as_ref().map(|r| if r.is_shared() { Arc::clone(r) } else { Arc::new(Rest::clone(r)) }),
        }
    }
}

impl Default for Scope {
    /// An empty scope. Allocates nothing.
    fn default() -> Self {
        Self { level: None, tags: Field::Empty, breadcrumbs: Field::Empty, request: RequestField::None, rest: None }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("level", &self.level)
            .field("transaction", &self.rest().transaction)
            .field("user", &self.rest().user)
            .field("tags", self.tags.value())
            .field("extra", self.rest().extra.value())
            .field("contexts", self.rest().contexts.value())
            .field("fingerprint", &self.rest().fingerprint)
            .field("breadcrumbs", &self.breadcrumbs.len())
            .field("request", &self.request.get())
            .field("processors", &self.rest().processors.len())
            .field("client", &self.rest().client.is_some())
            .finish()
    }
}

impl Scope {
    fn rest(&self) -> &Rest {
        self.rest.as_deref().unwrap_or(&EMPTY_REST)
    }

    fn rest_mut(&mut self) -> &mut Rest {
        Arc::make_mut(self.rest.get_or_insert_with(Default::default))
    }

    /// Sets the level that events captured with this scope get (unless the event sets its own).
    pub fn set_level(&mut self, level: Option<Level>) {
        self.level = level;
    }

    /// The level override, if any.
    pub fn level(&self) -> Option<Level> {
        self.level
    }

    /// Sets the transaction name (the layer sets the route, e.g. `/users/{id}`).
    pub fn set_transaction(&mut self, transaction: Option<&str>) {
        self.rest_mut().transaction = transaction.map(Arc::from);
    }

    /// The transaction name: the one set, else the request's route (see
    /// [`RequestInfo::transaction`]), if any.
    pub fn transaction(&self) -> Option<&str> {
        self.rest().transaction.as_deref().or_else(|| self.request.get().map(RequestInfo::transaction))
    }

    /// The span open in this scope and its parent (see `start_span`).
    pub(crate) fn active_span(&self) -> Option<(SpanId, SpanId)> {
        self.rest().span
    }

    /// Sets or clears the span open in this scope.
    pub(crate) fn set_active_span(&mut self, span: Option<(SpanId, SpanId)>) {
        if span.is_some() || self.rest().span.is_some() {
            self.rest_mut().span = span;
        }
    }

    /// The name events and the transaction get: the one set, else the request's route —
    /// `GET /users/{id}` rather than `/users/{id}` when `init` chose
    /// `TransactionStyle::MethodAndRoute`.
    pub(crate) fn transaction_name(&self) -> Option<String> {
        if let Some(set) = self.rest().transaction.as_deref() {
            return Some(set.to_owned());
        }
        let request = self.request.get()?;
        Some(if METHOD_IN_NAMES.load(std::sync::atomic::Ordering::Relaxed) {
            format!("{} {}", request.method(), request.transaction())
        } else {
            request.transaction().to_owned()
        })
    }

    /// Sets or clears the user.
    pub fn set_user(&mut self, user: Option<User>) {
        self.rest_mut().user = user.map(Arc::new);
    }

    /// The user, if any.
    pub fn user(&self) -> Option<&User> {
        self.rest().user.as_deref()
    }

    /// Sets a tag (a short indexed string). A `&'static str` key or value is kept as is:
    /// setting a tag from literals copies nothing.
    pub fn set_tag(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) {
        self.tags.make_mut().insert(key.into(), value.into());
    }

    /// Removes a tag.
    pub fn remove_tag(&mut self, key: &str) {
        if self.tags.contains_key(key) {
            self.tags.make_mut().remove(key);
        }
    }

    /// One tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.value().get(key)
    }

    /// All tags.
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// Sets an extra value (arbitrary JSON, not indexed).
    pub fn set_extra(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.rest_mut().extra.make_mut().insert(key.into(), value.into());
    }

    /// All extra values.
    pub fn extra(&self) -> &BTreeMap<String, Value> {
        &self.rest().extra
    }

    /// Sets a context (a named JSON object such as `"app"` or `"order"`).
    pub fn set_context(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.rest_mut().contexts.make_mut().insert(key.into(), value.into());
    }

    /// All contexts.
    pub fn contexts(&self) -> &BTreeMap<String, Value> {
        &self.rest().contexts
    }

    /// Sets the fingerprint that groups events into issues.
    pub fn set_fingerprint(&mut self, fingerprint: Option<&[&str]>) {
        self.rest_mut().fingerprint = fingerprint.map(|f| f.iter().map(|s| (*s).to_owned()).collect());
    }

    /// The fingerprint, if any.
    pub fn fingerprint(&self) -> Option<&[String]> {
        self.rest().fingerprint.as_deref()
    }

    /// Sets the request this scope's unit of work serves (the layer does this).
    pub fn set_request(&mut self, request: Option<RequestInfo>) {
        self.request = request.map_or(RequestField::None, RequestField::Own);
    }

    #[inline(always)]
    pub(crate) fn with_request(request: RequestInfo) -> Self {
        Self { request: RequestField::Own(request), ..Self::default() }
    }

    /// Empties a request's scope for the next request served by a pooled handle: everything
    /// goes but its breadcrumb ring's buffer (cleared), if it owns one of a request's size; the
    /// request's snapshot buffer goes to the thread's next snapshot.
    pub(crate) fn clear_for_reuse(&mut self) {
        // Every field named, and each reset where it lies (no copy of the scope): a field added
        // later does not compile until it is cleared here too.
        let Self { level, tags, breadcrumbs, request, rest } = self;
        *level = None;
        *rest = None;
        let keep_ring = match breadcrumbs {
            // Kept up to 16 slots (1,920 bytes; breadcrumbs are held in place).
            Field::Own(ring) if ring.capacity() <= 16 => {
                breadcrumbs::clear_ring(ring);
                true
            }
            _ => false,
        };
        if !keep_ring {
            *breadcrumbs = Field::Empty;
        }
        let keep_tags = match tags {
            Field::Own(tags) => tags.clear_keeping_buffer(),
            _ => false,
        };
        if !keep_tags {
            *tags = Field::Empty;
        }
        if let RequestField::Own(info) = request {
            info.recycle();
        }
        *request = RequestField::None;
    }

    /// The scope cleared by [`clear_for_reuse`](Self::clear_for_reuse), for a new request.
    pub(crate) fn reuse_for_request(&mut self, request: RequestInfo) {
        debug_assert!(self.breadcrumbs.is_empty() && self.tags.is_empty() && self.request.get().is_none());
        self.request = RequestField::Own(request);
    }

    /// Whether nothing at all is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.level.is_none()
            && self.tags.is_empty()
            && self.breadcrumbs.is_empty()
            && self.request.get().is_none()
            && self.rest().is_empty()
    }

    /// The request info, if any.
    pub fn request(&self) -> Option<&RequestInfo> {
        self.request.get()
    }

    /// Adds an event processor: it runs for every event captured with this scope (outside any
    /// lock of ours, so it may call back into isoscope) and may edit the event or drop it.
    pub fn add_event_processor<F>(&mut self, processor: F)
    where
        F: Fn(Event) -> Option<Event> + Send + Sync + 'static,
    {
        self.rest_mut().processors.make_mut().push(Arc::new(processor));
    }

    /// An O(1) copy: every field becomes shared (copy-on-write) between `self` and the copy.
    /// [`ScopeHandle::fork`](crate::ScopeHandle::fork) and
    /// [`ScopeHandle::snapshot`](crate::ScopeHandle::snapshot) use this.
    #[must_use]
    #[inline]
    pub fn fork(&mut self) -> Self {
        if let Some(rest) = self.rest.as_mut().and_then(Arc::get_mut) {
            // About to have two holders: its fields must be shared first (see `Rest`).
            rest.make_shared();
        }
        Self {
            level: self.level,
            tags: self.tags.share(),
            breadcrumbs: self.breadcrumbs.share(),
            request: self.request.share(),
            rest: self.rest.clone(),
        }
    }

    /// A copy that shares no allocation with `self`, for a per-thread cache: forking from it
    /// then touches only reference counts of this thread's own copy.
    pub(crate) fn localized(&self) -> Self {
        let rest = self.rest();
        Self {
            level: self.level,
            tags: self.tags.localized(),
            breadcrumbs: self.breadcrumbs.localized(),
            request: self.request.get().map_or(RequestField::None, |r| RequestField::Shared(Arc::new(r.clone()))),
            // Its fields come out shared, as a `Rest` with two holders must have them.
            rest: (!rest.is_empty()).then(|| Arc::new(rest.localized())),
        }
    }

    pub(crate) fn push_processor(&mut self, processor: EventProcessor) {
        self.rest_mut().processors.make_mut().push(processor);
    }

    /// Binds a client to this scope (see [`ScopeClient`]).
    pub(crate) fn set_client(&mut self, client: Option<ScopeClient>) {
        self.rest_mut().client = client;
    }

    /// The client bound to this scope, if any.
    pub(crate) fn client(&self) -> Option<&ScopeClient> {
        self.rest().client.as_ref()
    }

    pub(crate) fn processors(&self) -> &[EventProcessor] {
        &self.rest().processors
    }
}

impl Scope {
    /// Merges what `other` set into `self` (used for scratch scopes of nested `configure`).
    pub(crate) fn absorb(&mut self, other: Self) {
        for (k, v) in other.tags() {
            self.set_tag(k.clone(), v.clone());
        }
        for (k, v) in other.extra() {
            self.set_extra(k.clone(), v.clone());
        }
        for (k, v) in other.contexts() {
            self.set_context(k.clone(), v.clone());
        }
        if let Some(level) = other.level() {
            self.set_level(Some(level));
        }
        if let Some(t) = other.transaction() {
            self.set_transaction(Some(t));
        }
        if let Some(u) = other.user() {
            self.set_user(Some(u.clone()));
        }
        if let Some(f) = other.fingerprint() {
            let f: Vec<&str> = f.iter().map(String::as_str).collect();
            self.set_fingerprint(Some(&f));
        }
        if let Some(r) = other.request() {
            self.set_request(Some(r.clone()));
        }
        for a in other.attachments() {
            self.add_attachment(a.clone());
        }
        self.push_all_from(&other);
        for p in other.processors() {
            self.push_processor(p.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Breadcrumb;

    #[test]
    fn fork_is_independent_both_ways() {
        let mut parent = Scope::default();
        parent.set_tag("a", "1");
        let mut child = parent.fork();
        child.set_tag("b", "2");
        parent.set_tag("c", "3");
        assert_eq!(child.tag("c"), None);
        assert_eq!(parent.tag("b"), None);
        assert_eq!(child.tag("a"), Some("1"));
    }

    #[test]
    fn rarely_set_fields_are_copied_on_write_one_field_at_a_time() {
        let mut parent = Scope::default();
        parent.set_extra("big", 1);
        parent.set_user(Some(User { id: Some("1".into()), ..Default::default() }));
        let mut child = parent.fork();
        child.set_user(None);
        child.set_context("order", serde_json::json!({ "id": 7 }));
        assert_eq!(parent.user().and_then(|u| u.id.as_deref()), Some("1"));
        assert!(child.user().is_none());
        assert!(parent.contexts().is_empty());
        assert_eq!(child.extra()["big"], 1);
        // The field neither side wrote is still one allocation.
        assert!(std::ptr::eq(parent.extra(), child.extra()));
        parent.set_extra("big", 2);
        assert_eq!(child.extra()["big"], 1);
        // A clone holds its own copy of what was written since the last fork.
        let mut clone = parent.clone();
        clone.set_extra("big", 3);
        clone.set_user(None);
        assert_eq!((parent.extra()["big"].as_i64(), parent.user().is_some()), (Some(2), true));
        let mut clone_of_clone = clone.clone();
        clone_of_clone.set_extra("other", 4);
        assert!(!clone.extra().contains_key("other"));
        // A scope with nothing rare set reads empty values without holding any.
        let empty = Scope::default();
        assert!(empty.is_empty() && empty.extra().is_empty() && empty.user().is_none());
    }

    #[test]
    fn breadcrumbs_are_a_bounded_ring() {
        let mut s = Scope::default();
        for i in 0..(DEFAULT_MAX_BREADCRUMBS + 10) {
            s.add_breadcrumb(Breadcrumb::new(i.to_string()));
        }
        assert_eq!(s.breadcrumbs().len(), DEFAULT_MAX_BREADCRUMBS);
        assert_eq!(s.breadcrumbs().next().unwrap().message.as_deref(), Some("10"));
    }
}
