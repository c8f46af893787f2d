//! [`Attachment`]: a file sent with an event (a request's payload, a config dump, a log
//! excerpt), as an `attachment` envelope item.

use std::fmt;

use bytes::Bytes;

/// A file sent beside an event, in the same envelope.
///
/// ```
/// use isoscope::protocol::{Attachment, AttachmentType};
/// let a = Attachment::new("config.toml", "port = 8080").with_content_type("application/toml");
/// assert_eq!(a.content_type(), Some("application/toml"));
/// assert_eq!((a.filename(), a.len(), a.kind()), ("config.toml", 11, AttachmentType::Attachment));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    filename: String,
    content_type: Option<String>,
    kind: AttachmentType,
    bytes: Bytes,
}

/// What an attachment is to Sentry (the item header's `attachment_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AttachmentType {
    /// A plain file (`event.attachment`).
    #[default]
    Attachment,
    /// A minidump (`event.minidump`).
    Minidump,
    /// A view hierarchy (`event.view_hierarchy`).
    ViewHierarchy,
}

impl AttachmentType {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Attachment => "event.attachment",
            Self::Minidump => "event.minidump",
            Self::ViewHierarchy => "event.view_hierarchy",
        }
    }
}

impl Attachment {
    /// A plain attachment named `filename` holding `bytes`.
    pub fn new(filename: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self { filename: filename.into(), content_type: None, kind: AttachmentType::default(), bytes: bytes.into() }
    }

    /// With a content type (`text/plain`, `application/json`, ...).
    #[must_use]
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// With an attachment type (default [`AttachmentType::Attachment`]).
    #[must_use]
    pub fn with_kind(mut self, kind: AttachmentType) -> Self {
        self.kind = kind;
        self
    }

    /// The file name.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The content type, if set.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The attachment type.
    pub fn kind(&self) -> AttachmentType {
        self.kind
    }

    /// The contents.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish()
    }
}
