//! What can become of each item the SDK captures: its data category, the reasons it may be
//! discarded, the process-wide tally per category (captured, sent, discarded per reason,
//! dropped at shutdown) that `stats()` reads, and each client's record of its discards that
//! client reports send.
//!
//! ```text
//!  capture ──▶ Recorder::captured / discarded (sampling, before_send, queue full)
//!     └▶ Envelope + Delivery ──▶ transport ──▶ Delivery::delivered / discarded(reason)
//!                                   └▶ tally (stats) + the client's pending client report
//! ```
//!
//! A leaf: it knows nothing of events or envelopes (`event::Delivery` carries an envelope's
//! quantities to a [`Recorder`]).

mod category;
mod reason;
mod recorder;
pub(crate) mod sessions;
mod tally;

pub use category::DataCategory;
pub use reason::DiscardReason;
pub(crate) use recorder::Recorder;
pub use tally::ItemStats;
pub(crate) use tally::{read, tally, Column, Tallies};
