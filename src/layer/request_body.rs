//! [`RequestBody`]: the tee on a request body that keeps the first bytes the handler reads, for
//! events (`Options::max_request_body_size`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::scope::BodySlot;

pin_project! {
    /// The tee the layer puts on a request body (inside the axum `Body` the handler gets):
    /// frames pass through unchanged, as the handler reads them; the first bytes read, up to
    /// `Options::max_request_body_size`, are also kept (copied) in the request's [`BodySlot`]
    /// for the events it captures (`request.data`), and freed with the request. Nothing is
    /// read that the handler does not read, and nothing waits.
    #[derive(Debug)]
    pub(crate) struct RequestBody<B> {
        #[pin]
        inner: B,
        // `None` once nothing more is kept: enough seen, the end, an error.
        slot: Option<Arc<BodySlot>>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, slot: Arc<BodySlot>) -> Self {
        Self { inner, slot: Some(slot).filter(|s| s.wants_more()) }
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Some(slot) = this.slot.as_ref() {
            let keep_going = match &polled {
                Poll::Ready(Some(Ok(frame))) => frame.data_ref().is_none_or(|data| record(slot, data)),
                Poll::Ready(None) => {
                    slot.complete();
                    false
                }
                Poll::Ready(Some(Err(_))) => false,
                Poll::Pending => true,
            };
            if !keep_going {
                *this.slot = None;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Keeps a data frame's bytes (all its chunks); `false` once the slot wants no more.
fn record<D: Buf>(slot: &BodySlot, data: &D) -> bool {
    let mut chunks = [std::io::IoSlice::new(&[]); 16];
    let n = data.chunks_vectored(&mut chunks);
    let seen: usize = chunks[..n].iter().map(|c| c.len()).sum();
    if seen < data.remaining() {
        // A buffer of more than 16 pieces (no body type we know makes one): not kept.
        slot.abandon();
        return false;
    }
    chunks[..n].iter().all(|c| slot.record(c))
}
