//! The breadcrumb ring of a [`Scope`]: at most `max_breadcrumbs` (process-wide, set by
//! `init`), the oldest dropped first; each breadcrumb shared (`Arc`), so forks and merges copy
//! pointers.

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

impl Scope {
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
                16 + if Arc::strong_count(b) == 1 { own } else { 0 }
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
fn make_room(crumbs: &mut VecDeque<Arc<Breadcrumb>>, max: usize) {
    let excess = crumbs.len() + 1 - max;
    crumbs.drain(..excess);
}
