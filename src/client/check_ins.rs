//! Sending cron check-ins: checked (slug, monitor configuration), given the client's
//! environment and release and the active trace, and sent as a `check_in` item.

use super::capture::{client_for, trace_of};
use crate::bind;
use crate::event::{CheckIn, CheckInError, Envelope, EnvelopeItem, EventId};

/// Relay keeps at most this many characters of a slug.
const MAX_SLUG: usize = 50;

/// Checks a monitor slug: what the server would refuse or cut is an error here.
pub(crate) fn check_slug(slug: &str) -> Result<(), CheckInError> {
    if slug.trim().is_empty() {
        return Err(CheckInError::new("monitor slug: empty"));
    }
    if slug.chars().count() > MAX_SLUG {
        return Err(CheckInError::new(format!("monitor slug `{slug}`: longer than {MAX_SLUG} characters")));
    }
    Ok(())
}

/// Sends `check_in` with the active scope's client: its id, or why it was not sent.
pub(crate) fn send(mut check_in: CheckIn) -> Result<EventId, CheckInError> {
    check_slug(&check_in.monitor_slug)?;
    if let Some(config) = &check_in.monitor_config {
        config.validate()?;
    }
    let scope = bind::find(bind::Access::Read).snapshot_without_breadcrumbs();
    let Some(core) = client_for(bind::current().as_deref(), &scope) else {
        return Err(CheckInError::new("no client: call isoscope::init first"));
    };
    let options = &core.options;
    if check_in.environment.is_none() {
        check_in.environment = options.environment.as_deref().map(str::to_owned);
    }
    if check_in.release.is_none() {
        check_in.release = options.release.as_deref().map(str::to_owned);
    }
    if check_in.contexts.is_none() {
        check_in = check_in.in_trace(trace_of(&scope).trace_id());
    }
    let id = check_in.check_in_id;
    let mut envelope = Envelope::new();
    // A new envelope takes one check-in: never refused.
    let _ = envelope.push(EnvelopeItem::CheckIn(check_in));
    core.transport.send(envelope.accounted(core.recorder.clone()));
    Ok(id)
}
