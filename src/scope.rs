//! The [`Scope`] data bag, its O(1) copy-on-write fork, and the merge of scopes into an event.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::breadcrumb::{advance_order, Breadcrumb, Level};
use crate::event::Event;
use crate::layer::RequestInfo;

/// The default cap on breadcrumbs kept per scope and per event.
pub(crate) const DEFAULT_MAX_BREADCRUMBS: usize = 100;

/// The cap in force, set by [`init`](crate::init) from `Options::max_breadcrumbs`.
static MAX_BREADCRUMBS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_BREADCRUMBS);

pub(crate) fn max_breadcrumbs() -> usize {
    MAX_BREADCRUMBS.load(Ordering::Relaxed)
}

pub(crate) fn set_max_breadcrumbs(max: usize) {
    MAX_BREADCRUMBS.store(max, Ordering::Relaxed);
}

/// The user an event is about.
///
/// ```
/// let user = isoscope::User { id: Some("42".into()), ..Default::default() };
/// isoscope::set_user(Some(user));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Stable identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// IP address (`"{{auto}}"` lets the server fill it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Any other attributes.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, Value>,
}

/// An event processor: may edit an event or drop it by returning `None`.
pub(crate) type EventProcessor = Arc<dyn Fn(Event) -> Option<Event> + Send + Sync>;

/// A collection field of a [`Scope`]. Empty costs nothing to copy or drop; written, it is
/// owned while only this scope holds it (written in place: no reference count, no extra
/// allocation), and shared copy-on-write once the scope is forked. Forking moves an owned
/// value into an `Arc` (O(1): the value itself is not copied); the first write after that
/// takes it back, copying it only if the other side still holds it.
#[derive(Default)]
enum Field<T: 'static> {
    #[default]
    Empty,
    Own(T),
    Shared(Arc<T>),
}

/// The collection types a [`Field`] holds.
trait Collection: Clone + Default + 'static {
    /// A `'static` empty value, for reads of an empty field.
    fn empty() -> &'static Self;
    fn is_empty(&self) -> bool;
    /// A new value about to be written to.
    fn for_writing() -> Self {
        Self::default()
    }
}

/// Tags: keys and values given as `&'static str` are kept as is (no copy).
pub type Tags = BTreeMap<Cow<'static, str>, Cow<'static, str>>;

static EMPTY_TAGS: Tags = BTreeMap::new();
static EMPTY_VALUES: BTreeMap<String, Value> = BTreeMap::new();
static EMPTY_CRUMBS: VecDeque<Arc<Breadcrumb>> = VecDeque::new();
static EMPTY_PROCESSORS: Vec<EventProcessor> = Vec::new();

impl Collection for Tags {
    fn empty() -> &'static Self {
        &EMPTY_TAGS
    }
    fn is_empty(&self) -> bool {
        self.is_empty()
    }
}

impl Collection for BTreeMap<String, Value> {
    fn empty() -> &'static Self {
        &EMPTY_VALUES
    }
    fn is_empty(&self) -> bool {
        self.is_empty()
    }
}

impl Collection for VecDeque<Arc<Breadcrumb>> {
    fn empty() -> &'static Self {
        &EMPTY_CRUMBS
    }
    /// Room for a request's usual breadcrumbs at once, rather than growing 4, 8, 16.
    fn for_writing() -> Self {
        Self::with_capacity(max_breadcrumbs().clamp(1, 16))
    }
    fn is_empty(&self) -> bool {
        self.is_empty()
    }
}

impl Collection for Vec<EventProcessor> {
    fn empty() -> &'static Self {
        &EMPTY_PROCESSORS
    }
    fn is_empty(&self) -> bool {
        self.is_empty()
    }
}

impl<T: Collection> Clone for Field<T> {
    /// Copies an owned value (use [`Field::share`] for an O(1) fork).
    fn clone(&self) -> Self {
        match self {
            Self::Empty => Self::Empty,
            Self::Own(v) => Self::Own(v.clone()),
            Self::Shared(v) => Self::Shared(Arc::clone(v)),
        }
    }
}

impl<T: Collection> Field<T> {
    fn value(&self) -> &T {
        match self {
            Self::Empty => T::empty(),
            Self::Own(v) => v,
            Self::Shared(v) => v,
        }
    }

    #[inline]
    fn make_mut(&mut self) -> &mut T {
        match self {
            Self::Own(_) => {}
            // A request's first write to the field.
            Self::Empty => *self = Self::Own(T::for_writing()),
            Self::Shared(_) => self.unshare(),
        }
        match self {
            Self::Own(v) => v,
            // Not reached (made owned above); correct anyway.
            Self::Empty | Self::Shared(_) => {
                self.unshare();
                self.make_mut()
            }
        }
    }

    /// The first write after a fork: takes the value back from the `Arc`, copying it only if
    /// the other side still holds it. Out of line: a request's own fields are never shared.
    #[cold]
    #[inline(never)]
    fn unshare(&mut self) {
        *self = match std::mem::replace(self, Self::Empty) {
            Self::Shared(v) => Self::Own(Arc::unwrap_or_clone(v)),
            Self::Empty => Self::Own(T::for_writing()),
            own => own,
        };
    }

    /// Moves an owned, non-empty value into an `Arc` (O(1): the value is not copied), so that
    /// copies of the field share it.
    fn make_shared(&mut self) {
        if let Self::Own(v) = self {
            if !v.is_empty() {
                *self = Self::Shared(Arc::new(std::mem::take(v)));
            }
        }
    }

    /// Whether the field holds a value of its own (copying it copies the value).
    fn is_owned(&self) -> bool {
        matches!(self, Self::Own(_))
    }

    /// An O(1) copy: an owned value moves into an `Arc` that both sides then share.
    fn share(&mut self) -> Self {
        self.make_shared();
        match self {
            Self::Shared(v) => Self::Shared(Arc::clone(v)),
            // Nothing in it (an owned value left is empty).
            Self::Empty | Self::Own(_) => Self::Empty,
        }
    }

    /// A shared copy of the value in an allocation of its own.
    fn localized(&self) -> Self {
        match self.value() {
            v if v.is_empty() => Self::Empty,
            v => Self::Shared(Arc::new(v.clone())),
        }
    }
}

impl<T: Collection> std::ops::Deref for Field<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value()
    }
}

/// The request field of a [`Scope`]: the request info lives inline in the request's own scope
/// (no allocation of its own) until the scope is forked, when it moves into an `Arc` that the
/// forks share.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // inline on purpose: boxing it is the allocation we avoid
enum RequestField {
    None,
    Own(RequestInfo),
    Shared(Arc<RequestInfo>),
}

impl RequestField {
    fn get(&self) -> Option<&RequestInfo> {
        match self {
            Self::None => None,
            Self::Own(r) => Some(r),
            Self::Shared(r) => Some(r),
        }
    }

    /// An O(1) copy (see [`Field::share`]).
    fn share(&mut self) -> Self {
        if let Self::Own(_) = self {
            if let Self::Own(own) = std::mem::replace(self, Self::None) {
                *self = Self::Shared(Arc::new(own));
            }
        }
        self.clone()
    }
}

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
    /// Each breadcrumb is shared, so a fork copying the ring (on its first write) and the
    /// merge at capture copy pointers, not breadcrumbs.
    breadcrumbs: Field<VecDeque<Arc<Breadcrumb>>>,
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
}

/// What an empty scope reads.
static EMPTY_REST: Rest = Rest {
    transaction: None,
    user: None,
    extra: Field::Empty,
    contexts: Field::Empty,
    fingerprint: None,
    processors: Field::Empty,
};

impl Rest {
    fn is_empty(&self) -> bool {
        self.transaction.is_none()
            && self.user.is_none()
            && self.extra.is_empty()
            && self.contexts.is_empty()
            && self.fingerprint.is_none()
            && self.processors.is_empty()
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
        }
    }
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
        self.tags.value().get(key).map(|v| &**v)
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

    /// Records a breadcrumb, keeping at most `max_breadcrumbs` (the oldest are dropped).
    ///
    /// This is the raw operation: it does not run `before_breadcrumb`. The free function
    /// [`add_breadcrumb`](crate::add_breadcrumb) does.
    pub fn add_breadcrumb(&mut self, mut breadcrumb: Breadcrumb) {
        breadcrumb.seq = advance_order();
        self.push_shared(Arc::new(breadcrumb));
    }

    /// Records a breadcrumb (its order observed already, see `breadcrumb::SEQUENCE`) in an
    /// isolation scope, or in the global scope bound as one by `global_scope().run(..)`: the
    /// global scope's breadcrumbs advance the order.
    pub(crate) fn push_isolation_breadcrumb(&mut self, mut breadcrumb: Arc<Breadcrumb>, global: bool) {
        if global {
            Arc::make_mut(&mut breadcrumb).seq = advance_order();
        }
        self.push_shared(breadcrumb);
    }

    fn push_shared(&mut self, breadcrumb: Arc<Breadcrumb>) {
        let max = max_breadcrumbs();
        if max == 0 {
            return;
        }
        let crumbs = self.breadcrumbs.make_mut();
        if crumbs.len() >= max {
            make_room(crumbs, max);
        }
        crumbs.push_back(breadcrumb);
    }

    /// Pushes `other`'s breadcrumbs (already recorded, order kept).
    pub(crate) fn push_all_from(&mut self, other: &Self) {
        for crumb in other.breadcrumbs.iter() {
            self.push_shared(crumb.clone());
        }
    }

    /// The breadcrumbs, oldest first.
    pub fn breadcrumbs(&self) -> impl ExactSizeIterator<Item = &Breadcrumb> + '_ {
        self.breadcrumbs.iter().map(|b| &**b)
    }

    /// Removes every breadcrumb.
    pub fn clear_breadcrumbs(&mut self) {
        self.breadcrumbs = Field::Empty;
    }

    /// Sets the request this scope's unit of work serves (the layer does this).
    pub fn set_request(&mut self, request: Option<RequestInfo>) {
        self.request = request.map_or(RequestField::None, RequestField::Own);
    }

    #[inline(always)]
    pub(crate) fn with_request(request: RequestInfo) -> Self {
        Self { request: RequestField::Own(request), ..Self::default() }
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

    pub(crate) fn processors(&self) -> &[EventProcessor] {
        &self.rest().processors
    }
}

/// Drops the oldest breadcrumbs until one more fits under `max`. Out of line: a request's ring
/// is rarely full.
#[inline(never)]
fn make_room(crumbs: &mut VecDeque<Arc<Breadcrumb>>, max: usize) {
    let excess = crumbs.len() + 1 - max;
    crumbs.drain(..excess);
}

/// Applies `scopes` (most specific first: current, isolation, global) to `event`.
///
/// Precedence: a value set on the event wins, then the first scope that has it. Breadcrumbs of
/// the event and all scopes are merged in recording order and trimmed to `max` (newest kept).
pub(crate) fn apply_scopes(event: &mut Event, scopes: &[&Scope], max: usize) {
    for scope in scopes {
        for (k, v) in scope.tags.iter() {
            if !event.tags.contains_key(&**k) {
                event.tags.insert(k.to_string(), v.to_string());
            }
        }
        if let Some(request) = scope.request() {
            event.tags.entry("request_id".to_owned()).or_insert_with(|| request.request_id());
        }
        let rest = scope.rest();
        for (k, v) in rest.extra.iter() {
            event.extra.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in rest.contexts.iter() {
            event.contexts.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if event.level.is_none() {
            event.level = scope.level;
        }
        if event.user.is_none() {
            event.user = rest.user.as_deref().cloned();
        }
        if event.transaction.is_none() {
            event.transaction = scope.transaction().map(str::to_owned);
        }
        if event.fingerprint.is_none() {
            event.fingerprint = rest.fingerprint.as_deref().map(<[String]>::to_vec);
        }
        if event.request.is_none() {
            event.request = scope.request().map(RequestInfo::to_event_request);
        }
    }
    // The event's own breadcrumbs were recorded "now" unless they came from a scope.
    for crumb in event.breadcrumbs.iter_mut().filter(|c| c.seq == 0) {
        crumb.seq = advance_order();
    }
    let own = std::mem::take(&mut event.breadcrumbs);
    let total: usize = own.len() + scopes.iter().map(|s| s.breadcrumbs.len()).sum::<usize>();
    let mut merged: Vec<Cow<'_, Breadcrumb>> = Vec::with_capacity(total);
    merged.extend(own.into_iter().map(Cow::Owned));
    for scope in scopes {
        merged.extend(scope.breadcrumbs.iter().map(|b| Cow::Borrowed(&**b)));
    }
    merged.sort_by_key(|c| c.seq); // stable: equal orders keep ring order
                                   // A fork shares its parent's breadcrumbs (the same allocation): never report one twice.
    let mut seen = std::collections::HashSet::new();
    merged.retain(|c| match c {
        Cow::Borrowed(b) => seen.insert(std::ptr::from_ref::<Breadcrumb>(b) as usize),
        Cow::Owned(_) => true,
    });
    let skip = merged.len().saturating_sub(max);
    // Only the breadcrumbs that are kept are copied into the event.
    event.breadcrumbs = merged.into_iter().skip(skip).map(Cow::into_owned).collect();
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn precedence_event_then_current_then_isolation_then_global() {
        let mut global = Scope::default();
        let mut iso = Scope::default();
        let mut current = Scope::default();
        global.set_tag("k", "global");
        global.set_tag("g", "global");
        iso.set_tag("k", "iso");
        iso.set_tag("i", "iso");
        current.set_tag("k", "current");
        iso.set_level(Some(Level::Warning));
        global.set_level(Some(Level::Debug));
        let mut event = Event::default();
        event.tags.insert("e".into(), "event".into());
        apply_scopes(&mut event, &[&current, &iso, &global], 100);
        assert_eq!(event.tags["k"], "current");
        assert_eq!(event.tags["g"], "global");
        assert_eq!(event.tags["i"], "iso");
        assert_eq!(event.tags["e"], "event");
        assert_eq!(event.level, Some(Level::Warning));

        let mut event = Event { level: Some(Level::Fatal), ..Event::default() };
        event.tags.insert("k".into(), "event".into());
        apply_scopes(&mut event, &[&current, &iso, &global], 100);
        assert_eq!(event.tags["k"], "event");
        assert_eq!(event.level, Some(Level::Fatal));
    }

    #[test]
    fn breadcrumbs_merge_in_recording_order_and_retrim() {
        let mut global = Scope::default();
        let mut iso = Scope::default();
        let mut current = Scope::default();
        global.add_breadcrumb(Breadcrumb::new("1"));
        iso.add_breadcrumb(Breadcrumb::new("2"));
        current.add_breadcrumb(Breadcrumb::new("3"));
        global.add_breadcrumb(Breadcrumb::new("4"));
        iso.add_breadcrumb(Breadcrumb::new("5"));
        let mut event = Event::default();
        apply_scopes(&mut event, &[&current, &iso, &global], 3);
        let msgs: Vec<_> = event.breadcrumbs.iter().map(|c| c.message.clone().unwrap()).collect();
        assert_eq!(msgs, ["3", "4", "5"]);
    }

    #[test]
    fn isolation_breadcrumbs_with_one_observed_order_keep_ring_order_and_are_not_duplicated() {
        let mut iso = Scope::default();
        for m in ["a", "b", "c"] {
            let crumb = Breadcrumb { seq: crate::breadcrumb::observe_order(), ..Breadcrumb::new(m) };
            iso.push_isolation_breadcrumb(Arc::new(crumb), false); // usually all observe one order
        }
        let current = iso.fork();
        let mut event = Event::default();
        apply_scopes(&mut event, &[&current, &iso], 100);
        let msgs: Vec<_> = event.breadcrumbs.iter().map(|c| c.message.clone().unwrap()).collect();
        assert_eq!(msgs, ["a", "b", "c"]);
    }

    #[test]
    fn shared_breadcrumbs_of_a_fork_are_not_duplicated() {
        let mut iso = Scope::default();
        iso.add_breadcrumb(Breadcrumb::new("shared"));
        let mut current = iso.fork();
        current.add_breadcrumb(Breadcrumb::new("mine"));
        let mut event = Event::default();
        apply_scopes(&mut event, &[&current, &iso], 100);
        assert_eq!(event.breadcrumbs.len(), 2);
    }
}
