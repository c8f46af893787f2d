//! The transport thread's side: a [`Shared`] state, [`run`] (the queue's reader, up to
//! `concurrency` deliveries at once, idle client reports) and the delivery of one envelope
//! (rate limits, retries with backoff, the answer read and judged).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Semaphore};

use super::super::address::redirect_target;
use super::super::client_reports::Reports;
use super::super::ratelimit::RateLimits;
use super::super::worker::{Budget, Pending, Verdict};
use super::HttpTransportBuilder;
use crate::debug::{self, Problem};
use crate::event::{Delivery, Envelope, FinishedEnvelope, ItemType};
use crate::outcome::DiscardReason;
use crate::stats::{incr, COUNTERS};

/// Idle this long with discards counted and not yet reported, the transport sends the report
/// on its own (an envelope with only the `client_report` item).
const IDLE_REPORT: Duration = Duration::from_secs(10);

/// Most bytes of a rejection's answer shown in the debug output.
const SAID: usize = 512;
/// Most bytes of a response body read (to reuse the connection); the rest is ignored.
const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Bodies larger than this are gzip-compressed (smaller ones gain less than the header costs).
pub(crate) const GZIP_ABOVE: usize = 1024;

/// What the transport and its thread share.
pub(super) struct Shared {
    /// Parsed once: reqwest would parse a `&str` (IDNA and all) on every request.
    pub(super) url: reqwest::Url,
    pub(super) auth: reqwest::header::HeaderValue,
    pub(super) public_dsn: String,
    pub(super) client: reqwest::Client,
    pub(super) limits: Mutex<RateLimits>,
    pub(super) pending: Pending,
    pub(super) reports: Reports,
    /// The bytes (estimated) of the envelopes queued or in flight.
    pub(super) budget: Budget,
    pub(super) settings: HttpTransportBuilder,
}

/// An envelope on its way through the queue, the accounting of its items, and the bytes it
/// holds of the budget.
pub(super) type Job = (Envelope, Option<Delivery>, usize);

impl Shared {
    /// One attempt's body: the header line stamped now, the items, gzipped above
    /// [`GZIP_ABOVE`] (whether it is, second).
    fn body(&self, envelope: &FinishedEnvelope, items: &[u8]) -> (Bytes, bool) {
        let mut body = envelope.header_line(Some(&self.public_dsn), crate::util::now_f64());
        body.extend_from_slice(items);
        if self.settings.compression && body.len() > GZIP_ABOVE {
            if let Some(gzipped) = super::super::gzip::gzip(&body) {
                return (Bytes::from(gzipped), true);
            }
        }
        (Bytes::from(body), false)
    }

    /// Whether every item of kinds `types` is rate limited now.
    pub(super) fn all_limited(&self, types: impl Iterator<Item = ItemType>) -> bool {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner).all_limited(types, Instant::now())
    }

    /// Drops the items that are rate limited now (counted); whether the envelope is still
    /// worth sending.
    fn drop_limited(&self, envelope: &mut FinishedEnvelope, delivery: &mut Option<Delivery>) -> bool {
        let mut dropped: Vec<ItemType> = Vec::new();
        let worth =
            self.limits.lock().unwrap_or_else(PoisonError::into_inner).drop_limited(envelope, Instant::now(), |t| {
                if !dropped.contains(&t) {
                    dropped.push(t);
                }
            });
        for t in dropped {
            self.pending.discard_part(delivery.as_mut(), t, DiscardReason::RatelimitBackoff);
        }
        worth
    }

    pub(super) fn backoff(&self, retry: u32) -> Duration {
        let s = &self.settings;
        s.backoff.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1))).min(s.max_backoff)
    }

    /// Delivers one envelope (with retries), a client report riding along if discards wait
    /// for one, and says how it ended. The report's counts are put back if it failed.
    /// `flushing`: the envelope of a flush, which takes the sessions whenever there are any
    /// (otherwise they ride along once a minute).
    async fn deliver(&self, envelope: Envelope, delivery: &mut Option<Delivery>, flushing: bool) -> Verdict {
        // The capture's deferred work (merge, scrub, limits), here on the transport's thread.
        let mut envelope = envelope.finish();
        let riding = self.reports.take().map(|(item, taken)| {
            envelope.push_unchecked(item);
            taken
        });
        let sessions = self.reports.take_sessions(flushing).map(|(item, counts)| {
            envelope.push_unchecked(item);
            counts
        });
        if envelope.items().is_empty() {
            return Verdict::Delivered; // a report's envelope, and nothing waited after all
        }
        let verdict = self.attempts(&mut envelope, delivery).await;
        if verdict != Verdict::Delivered {
            if let Some(taken) = riding {
                taken.put_back();
            }
            if let Some(counts) = sessions {
                crate::outcome::sessions::restore(counts);
            }
        }
        verdict
    }

    /// Sends `envelope` until it is answered, retrying as configured.
    async fn attempts(&self, envelope: &mut FinishedEnvelope, delivery: &mut Option<Delivery>) -> Verdict {
        let mut items = Vec::new();
        let mut retries = 0;
        loop {
            let kept = envelope.items().len();
            if !self.drop_limited(envelope, delivery) {
                return Verdict::Discarded(DiscardReason::RatelimitBackoff);
            }
            if items.is_empty() || envelope.items().len() != kept {
                items = envelope.items_bytes();
            }
            // Each attempt says when it was sent.
            let (body, gzipped) = self.body(envelope, &items);
            let mut request = self
                .client
                .post(self.url.clone())
                .header("x-sentry-auth", self.auth.clone())
                .header("content-type", "application/x-sentry-envelope");
            if gzipped {
                request = request.header("content-encoding", "gzip");
            }
            let answer = request.body(body).send().await;
            let failure = match answer {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
                    self.limits.lock().unwrap_or_else(PoisonError::into_inner).update(
                        status,
                        header("x-sentry-rate-limits"),
                        header("retry-after"),
                        Instant::now(),
                    );
                    // Read (a bounded part of) the answer so the connection can be reused; its
                    // start is what the debug output shows of a rejection.
                    let mut read = 0;
                    // Kept only for the debug output (nothing copied when it is off).
                    let keep = if debug::enabled() { SAID } else { 0 };
                    let mut said = Vec::new();
                    while let Ok(Some(chunk)) = response.chunk().await {
                        said.extend_from_slice(&chunk[..chunk.len().min(keep.saturating_sub(said.len()))]);
                        read += chunk.len();
                        if read > MAX_RESPONSE_BODY {
                            break;
                        }
                    }
                    match status {
                        200..=299 => return Verdict::Delivered,
                        429 => {
                            debug::problem(Problem::RateLimited, || {
                                format!("{} answered 429: rate limited, events are dropped until it ends", self.url)
                            });
                            // The server counted this one itself: not in a client report.
                            return Verdict::RateLimitedByServer;
                        }
                        500..=599 => format!("{} answered {status}", self.url),
                        300..=399 => {
                            debug::problem(Problem::Redirected, || {
                                let to = response.headers().get("location").map(|l| redirect_target(&self.url, l));
                                format!(
                                    "{} answered {status}: the server redirected to {}; isoscope does not follow \
                                     redirects (only the DSN's host may see its key), so the event was dropped: \
                                     use the DSN your server shows now",
                                    self.url,
                                    to.as_deref().unwrap_or("nowhere (no Location)")
                                )
                            });
                            return Verdict::Discarded(DiscardReason::SendError);
                        }
                        _ => {
                            debug::problem(Problem::Rejected, || {
                                format!(
                                    "{} rejected an event with {status}: {}",
                                    self.url,
                                    debug::Untrusted(String::from_utf8_lossy(&said).trim())
                                )
                            });
                            return Verdict::Discarded(DiscardReason::SendError);
                        }
                    }
                }
                // Connection refused or reset, timeout.
                Err(err) => format!("sending to {} failed: {}", self.url, debug::Untrusted(err.to_string())),
            };
            // A client report on its own is not retried: its counts wait for the next one.
            let gave_up = retries >= self.settings.max_retries || delivery.is_none();
            debug::problem(Problem::Network, || {
                let next = if gave_up {
                    "dropped".to_owned()
                } else {
                    format!("retry {} of {}", retries + 1, self.settings.max_retries)
                };
                format!("{failure} ({next})")
            });
            if gave_up {
                return Verdict::Discarded(DiscardReason::NetworkError);
            }
            retries += 1;
            incr(&COUNTERS.events_retried);
            tokio::time::sleep(self.backoff(retries)).await;
        }
    }
}

/// An envelope taken from the queue, until its delivery ends: settles its accounting once,
/// even when the runtime drops it unfinished at shutdown (then `close` counted it already).
struct InFlight {
    shared: Arc<Shared>,
    delivery: Option<Delivery>,
    verdict: Verdict,
    bytes: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.budget.give_back(self.bytes);
        self.shared.pending.finish(self.delivery.take(), self.verdict);
    }
}

pub(super) async fn run(mut rx: mpsc::Receiver<Job>, shared: Arc<Shared>, mut closed: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(shared.settings.concurrency));
    loop {
        // Once shut down, nothing more is sent: what is left was counted as dropped.
        let (envelope, delivery, bytes) = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => break,
            job = rx.recv() => match job { Some(job) => job, None => break },
            // Idle for a while: discards wait for a report? Send it.
            () = tokio::time::sleep(IDLE_REPORT) => {
                if shared.reports.waiting() && shared.pending.add(None) {
                    // (Sessions ride on it once a minute at most; client reports always.)
                    // An empty envelope: the report rides on it (`deliver`).
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let _in_flight =
                            InFlight { shared: shared.clone(), delivery: None, verdict: Verdict::Delivered, bytes: 0 };
                        shared.deliver(Envelope::new(), &mut None, false).await;
                    });
                }
                continue;
            }
        };
        // A report never counts as lost: its counts go back for the next one.
        let report = delivery.is_none() && envelope.item_types().next().is_none();
        let verdict = Verdict::Discarded(DiscardReason::InternalSdkError);
        let mut in_flight = InFlight { shared: shared.clone(), delivery, verdict, bytes };
        let slot = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => break,
            slot = slots.clone().acquire_owned() => match slot { Ok(s) => s, Err(_) => break },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let verdict = shared.deliver(envelope, &mut in_flight.delivery, report).await;
            in_flight.verdict = if report { Verdict::Delivered } else { verdict };
            drop((in_flight, slot));
        });
    }
    // What is still queued was counted at shutdown: its accounting ends without a count.
    rx.close();
    while let Ok((_, delivery, bytes)) = rx.try_recv() {
        shared.budget.give_back(bytes);
        shared.pending.finish(delivery, Verdict::Discarded(DiscardReason::InternalSdkError));
    }
    // Returning ends the runtime, which cancels the deliveries still in flight (counted).
}
