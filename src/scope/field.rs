//! The fields of a [`Scope`](super::Scope): owned until the scope is forked, shared
//! copy-on-write after it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use super::breadcrumbs::{max_breadcrumbs, share_all, Crumb};
use super::{EventProcessor, RequestInfo, Tags};

/// A collection field of a [`Scope`]. Empty costs nothing to copy or drop; written, it is
/// owned while only this scope holds it (written in place: no reference count, no extra
/// allocation), and shared copy-on-write once the scope is forked. Forking moves an owned
/// value into an `Arc` (O(1): the value itself is not copied); the first write after that
/// takes it back, copying it only if the other side still holds it.
#[derive(Default)]
pub(super) enum Field<T: 'static> {
    #[default]
    Empty,
    Own(T),
    Shared(Arc<T>),
}

/// The collection types a [`Field`] holds.
pub(super) trait Collection: Clone + Default + 'static {
    /// A `'static` empty value, for reads of an empty field.
    fn empty() -> &'static Self;
    fn is_empty(&self) -> bool;
    /// Readies a value about to be shared (moved into an `Arc` that copies of the field hold).
    fn before_sharing(&mut self) {}
    /// A new value about to be written to.
    fn for_writing() -> Self {
        Self::default()
    }
}

static EMPTY_TAGS: Tags = Tags::new();
static EMPTY_VALUES: BTreeMap<String, Value> = BTreeMap::new();
static EMPTY_CRUMBS: VecDeque<Crumb> = VecDeque::new();
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

impl Collection for VecDeque<Crumb> {
    fn empty() -> &'static Self {
        &EMPTY_CRUMBS
    }
    /// Breadcrumbs held in place become shared: copies of the ring copy pointers.
    fn before_sharing(&mut self) {
        share_all(self);
    }
    /// Room for a request's usual breadcrumbs at once, rather than growing 4, 8: 8 in place
    /// are 960 bytes, which glibc's per-thread cache still serves (it stops at 1,032).
    fn for_writing() -> Self {
        Self::with_capacity(max_breadcrumbs().clamp(1, 8))
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
    /// How many hold its value: 0 empty, 1 owned, else the sharers' count.
    pub(super) fn holders(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Own(_) => 1,
            Self::Shared(value) => Arc::strong_count(value),
        }
    }

    pub(super) fn value(&self) -> &T {
        match self {
            Self::Empty => T::empty(),
            Self::Own(v) => v,
            Self::Shared(v) => v,
        }
    }

    #[inline]
    pub(super) fn make_mut(&mut self) -> &mut T {
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
    pub(super) fn make_shared(&mut self) {
        if let Self::Own(v) = self {
            if !v.is_empty() {
                v.before_sharing();
                *self = Self::Shared(Arc::new(std::mem::take(v)));
            }
        }
    }

    /// Whether the field holds a value of its own (copying it copies the value).
    pub(super) fn is_owned(&self) -> bool {
        matches!(self, Self::Own(_))
    }

    /// An O(1) copy: an owned value moves into an `Arc` that both sides then share.
    pub(super) fn share(&mut self) -> Self {
        self.make_shared();
        match self {
            Self::Shared(v) => Self::Shared(Arc::clone(v)),
            // Nothing in it (an owned value left is empty).
            Self::Empty | Self::Own(_) => Self::Empty,
        }
    }

    /// A shared copy of the value in an allocation of its own.
    pub(super) fn localized(&self) -> Self {
        match self.value() {
            v if v.is_empty() => Self::Empty,
            v => {
                let mut copy = v.clone();
                copy.before_sharing();
                Self::Shared(Arc::new(copy))
            }
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
pub(super) enum RequestField {
    None,
    Own(RequestInfo),
    Shared(Arc<RequestInfo>),
}

impl RequestField {
    pub(super) fn get(&self) -> Option<&RequestInfo> {
        match self {
            Self::None => None,
            Self::Own(r) => Some(r),
            Self::Shared(r) => Some(r),
        }
    }

    /// An O(1) copy (see [`Field::share`]).
    pub(super) fn share(&mut self) -> Self {
        if let Self::Own(_) = self {
            if let Self::Own(own) = std::mem::replace(self, Self::None) {
                *self = Self::Shared(Arc::new(own));
            }
        }
        self.clone()
    }
}
