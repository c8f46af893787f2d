//! A scope's attachments: files every event captured in it carries, as `attachment` items in
//! the event's envelope (transactions carry none).

use std::sync::Arc;

use super::Scope;
use crate::event::Attachment;

impl Scope {
    /// Adds a file that every event captured in this scope (and its forks) carries: a
    /// request's payload, a config dump, a log excerpt. Forks share the list (O(1)); the bytes
    /// are shared too (`bytes::Bytes`), never copied per event. An attachment over 8 MiB is left
    /// out of the events and counted (`invalid`, category `attachment`).
    ///
    /// ```
    /// use isoscope::protocol::Attachment;
    /// let transport = isoscope::MemoryTransport::new();
    /// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
    /// let request = isoscope::isolation_scope().fork();
    /// request.configure(|s| s.add_attachment(Attachment::new("cart.json", r#"{"items": 3}"#)));
    /// request.run(|| isoscope::capture_message("checkout failed", isoscope::Level::Error));
    /// let envelope = &transport.envelopes()[0];
    /// let files: Vec<&str> = envelope.attachments().map(|a| a.filename()).collect();
    /// assert_eq!(files, ["cart.json"]);
    /// ```
    pub fn add_attachment(&mut self, attachment: Attachment) {
        let rest = self.rest_mut();
        let mut all = rest.attachments.as_deref().map(<[Attachment]>::to_vec).unwrap_or_default();
        all.push(attachment);
        rest.attachments = Some(Arc::from(all));
    }

    /// Removes this scope's attachments.
    pub fn clear_attachments(&mut self) {
        if !self.attachments().is_empty() {
            self.rest_mut().attachments = None;
        }
    }

    /// This scope's attachments, in the order they were added.
    pub fn attachments(&self) -> &[Attachment] {
        self.rest().attachments.as_deref().unwrap_or_default()
    }
}
