//! The breadcrumb ring of a [`Scope`]: at most `max_breadcrumbs` (process-wide, set by
//! `init`), the oldest dropped first; each breadcrumb held in place until the ring is shared
//! by a fork, and shared (`Arc`) from then on, so forks and merges copy pointers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{Field, Scope};
use crate::event::{advance_order, Breadcrumb};

/// The default cap on breadcrumbs kept per scope and per event.
pub(crate) const DEFAULT_MAX_BREADCRUMBS: usize = 100;

/// The cap in force, set by [`init`](crate::init) from `Options::max_breadcrumbs`.
static MAX_BREADCRUMBS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_BREADCRUMBS);

pub(super) fn max_breadcrumbs() -> usize {
    MAX_BREADCRUMBS.load(Ordering::Relaxed)
}

pub(crate) fn set_max_breadcrumbs(max: usize) {
    MAX_BREADCRUMBS.store(max, Ordering::Relaxed);
}

/// A breadcrumb in a scope's ring: held in place when recorded (no allocation of its own: a
/// request that never captures never pays for one), shared once the ring is about to be (see
/// [`Crumb::share`]), so that copies of a ring copy pointers and a merge tells the same
/// breadcrumb by its address.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // inline on purpose: boxing it is the allocation we avoid
pub(super) enum Crumb {
    Own(Breadcrumb),
    Shared(Arc<Breadcrumb>),
}

impl std::ops::Deref for Crumb {
    type Target = Breadcrumb;
    fn deref(&self) -> &Breadcrumb {
        match self {
            Self::Own(b) => b,
            Self::Shared(b) => b,
        }
    }
}

impl Crumb {
    /// Makes it shared (moved into an `Arc`), if it is not yet.
    pub(super) fn share(&mut self) {
        if let Self::Own(b) = self {
            *self = Self::Shared(Arc::new(std::mem::replace(b, Breadcrumb::EMPTY)));
        }
    }

    /// The shared breadcrumb (a copy in an `Arc` of its own if it is held in place, which a
    /// ring that was forked never holds).
    pub(super) fn to_shared(&self) -> Arc<Breadcrumb> {
        match self {
            Self::Own(b) => Arc::new(b.clone()),
            Self::Shared(b) => Arc::clone(b),
        }
    }

    /// Whether no other ring or event holds it.
    fn is_unique(&self) -> bool {
        match self {
            Self::Own(_) => true,
            Self::Shared(b) => Arc::strong_count(b) == 1,
        }
    }
}

/// Empties a ring, keeping its buffer. Each breadcrumb is taken apart: an empty `data` map
/// (the usual case) is let go rather than dropped, since a `BTreeMap`'s drop walks an iterator
/// even when it holds nothing (and an empty map owns no memory: nothing leaks).
pub(super) fn clear_ring(ring: &mut VecDeque<Crumb>) {
    while let Some(crumb) = ring.pop_back() {
        if let Crumb::Own(Breadcrumb { data, .. }) = crumb {
            if data.is_empty() {
                // Nothing to free: an empty `BTreeMap` has no node (the crate warns on
                // `mem::forget` because it leaks; here it cannot).
                #[allow(clippy::mem_forget)]
                std::mem::forget(data);
            }
        }
    }
}

/// Shares every breadcrumb of a ring about to be shared (see [`Crumb`]).
pub(super) fn share_all(ring: &mut VecDeque<Crumb>) {
    for crumb in ring.iter_mut() {
        crumb.share();
    }
}

impl Scope {
    /// Records a breadcrumb, keeping at most `max_breadcrumbs` (the oldest are dropped).
    ///
    /// This is the raw operation: it does not run `before_breadcrumb`. The free function
    /// [`add_breadcrumb`](crate::add_breadcrumb) does.
    pub fn add_breadcrumb(&mut self, mut breadcrumb: Breadcrumb) {
        breadcrumb.seq = advance_order();
        self.push(Crumb::Own(breadcrumb));
    }

    /// Records a breadcrumb (its order observed already, see `breadcrumb::SEQUENCE`) in an
    /// isolation scope, or in the global scope bound as one by `global_scope().run(..)`: the
    /// global scope's breadcrumbs advance the order. The breadcrumb is taken from `slot` (if it
    /// is still there) at the last moment: one moved through the edit's closures was copied
    /// (136 bytes) at every step.
    pub(crate) fn push_isolation_breadcrumb_from(&mut self, slot: &mut Option<Breadcrumb>, global: bool) {
        if slot.is_none() {
            return;
        }
        let Some(crumbs) = self.ring_with_room() else { return };
        let Some(mut breadcrumb) = slot.take() else { return };
        if global {
            breadcrumb.seq = advance_order();
        }
        crumbs.push_back(Crumb::Own(breadcrumb));
    }

    /// [`push_isolation_breadcrumb_from`](Self::push_isolation_breadcrumb_from) for a breadcrumb
    /// shared already (with a log record made of the same call).
    pub(crate) fn push_shared_isolation_breadcrumb(&mut self, mut breadcrumb: Arc<Breadcrumb>, global: bool) {
        if global {
            Arc::make_mut(&mut breadcrumb).seq = advance_order();
        }
        self.push(Crumb::Shared(breadcrumb));
    }

    fn push(&mut self, breadcrumb: Crumb) {
        if let Some(crumbs) = self.ring_with_room() {
            crumbs.push_back(breadcrumb);
        }
    }

    /// The ring, its oldest breadcrumbs dropped so that one more fits under `max_breadcrumbs`;
    /// `None` when breadcrumbs are off (a cap of 0).
    #[inline(always)]
    fn ring_with_room(&mut self) -> Option<&mut VecDeque<Crumb>> {
        let max = max_breadcrumbs();
        if max == 0 {
            return None;
        }
        let crumbs = self.breadcrumbs.make_mut();
        if crumbs.len() >= max {
            make_room(crumbs, max);
        }
        Some(crumbs)
    }

    /// Pushes `other`'s breadcrumbs (already recorded, order kept).
    pub(crate) fn push_all_from(&mut self, other: &Self) {
        for crumb in other.breadcrumbs.iter() {
            self.push(crumb.clone());
        }
    }

    /// The breadcrumbs, oldest first.
    pub fn breadcrumbs(&self) -> impl ExactSizeIterator<Item = &Breadcrumb> + '_ {
        self.breadcrumbs.iter().map(|b| &**b)
    }

    /// About how many bytes of breadcrumbs a snapshot of this scope keeps alive, for a queue's
    /// bound: nothing when the ring is shared with another snapshot too (an earlier queued
    /// event holds the same ring); else a pointer each, and the breadcrumb itself (a typical
    /// 160 bytes, plus its message and 64 per data entry) only when no other ring has it — so
    /// breadcrumbs that many queued events share are counted in full once.
    pub(crate) fn breadcrumb_bytes(&self) -> usize {
        // This scope's snapshot and the live scope it was taken from share the ring.
        if self.breadcrumbs.holders() > 2 {
            return 0;
        }
        self.breadcrumbs
            .iter()
            .map(|b| {
                let own = 160 + b.message.as_ref().map_or(0, |m| m.len()) + 64 * b.data.len();
                16 + if b.is_unique() { own } else { 0 }
            })
            .sum()
    }

    /// [`fork`](Self::fork) without the breadcrumbs (what logs, spans and trace headers read
    /// of a scope: tags, user, request, span). The ring stays owned here, so the next breadcrumb written is not a copy
    /// of the whole ring, as it would be after a fork that shared it.
    pub(crate) fn fork_without_breadcrumbs(&mut self) -> Self {
        if let Some(rest) = self.rest.as_mut().and_then(Arc::get_mut) {
            rest.make_shared();
        }
        Self {
            level: self.level,
            tags: self.tags.share(),
            breadcrumbs: Field::Empty,
            request: self.request.share(),
            rest: self.rest.clone(),
        }
    }
    /// Removes every breadcrumb.
    pub fn clear_breadcrumbs(&mut self) {
        self.breadcrumbs = Field::Empty;
    }
}

/// Drops the oldest breadcrumbs until one more fits under `max`. Out of line: a request's ring
/// is rarely full.
#[inline(never)]
fn make_room(crumbs: &mut VecDeque<Crumb>, max: usize) {
    let excess = crumbs.len() + 1 - max;
    crumbs.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptrs(ring: &VecDeque<Crumb>) -> Vec<*const Breadcrumb> {
        ring.iter().map(|c| &**c as *const Breadcrumb).collect()
    }

    #[test]
    fn breadcrumbs_held_in_place_are_shared_by_a_fork_and_never_copied_twice() {
        let mut scope = Scope::default();
        scope.add_breadcrumb(Breadcrumb::new("a"));
        scope.add_breadcrumb(Breadcrumb::new("b"));
        assert!(scope.breadcrumbs.iter().all(|c| matches!(c, Crumb::Own(_))), "recorded in place");
        let fork = scope.fork();
        assert!(scope.breadcrumbs.iter().all(|c| matches!(c, Crumb::Shared(_))), "shared by the fork");
        assert_eq!(ptrs(&scope.breadcrumbs), ptrs(&fork.breadcrumbs), "one allocation each, both sides");
        // A write after the fork copies the ring's pointers, not the breadcrumbs.
        scope.add_breadcrumb(Breadcrumb::new("c"));
        assert_eq!(ptrs(&scope.breadcrumbs)[..2], ptrs(&fork.breadcrumbs)[..]);
        assert_eq!(fork.breadcrumbs().map(|b| b.message.as_deref().unwrap()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(scope.breadcrumbs().map(|b| b.message.as_deref().unwrap()).collect::<Vec<_>>(), ["a", "b", "c"]);
        // What the merge takes of a ring held in place is a copy; of a shared one, the breadcrumb.
        assert!(matches!(scope.breadcrumbs.back(), Some(Crumb::Own(_))));
        let own = scope.breadcrumbs.back().unwrap().to_shared();
        assert_eq!(own.message.as_deref(), Some("c"));
        let shared = scope.breadcrumbs.front().unwrap().to_shared();
        assert!(std::ptr::eq(&*shared, &**fork.breadcrumbs.front().unwrap()));
        // A scope's ring counts its breadcrumbs' bytes once (see `breadcrumb_bytes`).
        assert!(Scope::default().breadcrumb_bytes() == 0 && scope.breadcrumb_bytes() > 0);
    }

    #[test]
    fn clearing_a_ring_drops_every_breadcrumb_and_keeps_the_buffer() {
        let shared = Arc::new(Breadcrumb::new("shared"));
        let mut ring = VecDeque::with_capacity(8);
        ring.push_back(Crumb::Own(Breadcrumb::new(String::from("owned")).data("k", "v")));
        ring.push_back(Crumb::Own(Breadcrumb::new("plain")));
        ring.push_back(Crumb::Shared(shared.clone()));
        clear_ring(&mut ring);
        assert!(ring.is_empty() && ring.capacity() >= 8);
        assert_eq!(Arc::strong_count(&shared), 1, "the ring's reference was dropped");
    }

    #[test]
    fn a_breadcrumb_is_taken_from_its_slot_only_when_recorded() {
        let mut scope = Scope::default();
        let mut slot = Some(Breadcrumb::new("a"));
        scope.push_isolation_breadcrumb_from(&mut slot, false);
        assert!(slot.is_none());
        let mut empty = None;
        scope.push_isolation_breadcrumb_from(&mut empty, true);
        assert_eq!(scope.breadcrumbs().map(|b| b.message.as_deref().unwrap()).collect::<Vec<_>>(), ["a"]);
    }
}
