//! The envelope model through the public API: every item kind's header line and payload,
//! which kinds may share an envelope, the explicit finish step (never a side effect of
//! `Debug`), and rate limits applied per item category by `HttpTransport`.

mod support;

use std::time::Duration;

use isoscope::protocol::{
    Attachment, CheckIn, CheckInStatus, ClientReport, DiscardReason, Log, LogLevel, SessionAggregate, SessionAggregates,
};
use isoscope::{DataCategory, Envelope, EnvelopeItem, Event, HttpTransport, ItemType, Level, TraceId, Transport};
use serde_json::Value;
use support::ingest::{Answer, Ingest};

/// The envelope's lines: header, then (item header, payload) pairs, checked for `length`.
fn parse(bytes: &[u8]) -> (Value, Vec<(Value, Vec<u8>)>) {
    let newline = |b: &[u8]| b.iter().position(|&c| c == b'\n').unwrap();
    let end = newline(bytes);
    let header = serde_json::from_slice(&bytes[..end]).unwrap();
    let mut rest = &bytes[end + 1..];
    let mut items = Vec::new();
    while rest.len() > 1 {
        let end = newline(rest);
        let item: Value = serde_json::from_slice(&rest[..end]).unwrap();
        let len = item["length"].as_u64().unwrap() as usize;
        let payload = rest[end + 1..end + 1 + len].to_vec();
        assert_eq!(rest[end + 1 + len], b'\n', "a payload is followed by a newline");
        rest = &rest[end + 2 + len..];
        items.push((item, payload));
    }
    (header, items)
}

#[test]
fn every_item_kind_writes_its_own_header_fields() {
    let mut with_event = Envelope::from_event(Event::message("boom", Level::Error));
    let attachment = Attachment::new("request.json", r#"{"cart": 3}"#).with_content_type("application/json");
    with_event.push(EnvelopeItem::Attachment(attachment)).unwrap();
    let mut report = ClientReport::new(1_700_000_000.0);
    report.add(DiscardReason::QueueOverflow, DataCategory::Error, 2);
    with_event.push(EnvelopeItem::ClientReport(report)).unwrap();
    let mut sessions = SessionAggregates::new("shop@1.0", None);
    sessions.aggregates.push(SessionAggregate::new(1_700_000_000.0));
    with_event.push(EnvelopeItem::Sessions(sessions)).unwrap();
    let (header, items) = parse(&with_event.finish().to_bytes(Some("https://k@h/1")));
    assert_eq!(header["dsn"], "https://k@h/1");
    let types: Vec<&str> = items.iter().map(|(h, _)| h["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["event", "attachment", "client_report", "sessions"]);
    let (attachment_header, bytes) = &items[1];
    assert_eq!(attachment_header["filename"], "request.json");
    assert_eq!(attachment_header["content_type"], "application/json");
    assert_eq!(attachment_header["attachment_type"], "event.attachment");
    assert_eq!(bytes, br#"{"cart": 3}"#, "an attachment's bytes go as they are");
    let report: Value = serde_json::from_slice(&items[2].1).unwrap();
    assert_eq!(report["discarded_events"][0]["reason"], "queue_overflow");

    let logs = vec![
        Log::new(1.0, TraceId::new(), LogLevel::Info, "one"),
        Log::new(2.0, TraceId::new(), LogLevel::Error, "two"),
    ];
    let (_, items) = parse(&Envelope::from(isoscope::FinishedEnvelope::default()).finish().to_bytes(None));
    assert!(items.is_empty());
    let mut log_envelope = Envelope::new();
    log_envelope.push(EnvelopeItem::Logs(logs)).unwrap();
    let (_, items) = parse(&log_envelope.finish().to_bytes(None));
    let (log_header, payload) = &items[0];
    assert_eq!(log_header["type"], "log");
    assert_eq!(log_header["item_count"], 2);
    assert_eq!(log_header["content_type"], "application/vnd.sentry.items.log+json");
    let container: Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(container["items"].as_array().unwrap().len(), 2);

    let mut check_in = Envelope::new();
    check_in.push(EnvelopeItem::CheckIn(CheckIn::new("nightly", CheckInStatus::InProgress))).unwrap();
    let (_, items) = parse(&check_in.finish().to_bytes(None));
    assert_eq!(items[0].0["type"], "check_in");
    let payload: Value = serde_json::from_slice(&items[0].1).unwrap();
    assert_eq!((payload["monitor_slug"].as_str(), payload["status"].as_str()), (Some("nightly"), Some("in_progress")));
}

#[test]
fn one_place_decides_which_kinds_share_an_envelope() {
    use ItemType::*;
    let all = [Event, Transaction, Attachment, Sessions, ClientReport, Log, CheckIn];
    for main in [Event, Transaction, Log, CheckIn] {
        for other in [Event, Transaction, Log, CheckIn] {
            assert!(!other.may_join(&[main]), "{other:?} beside {main:?}");
        }
        assert!(Sessions.may_join(&[main]) && ClientReport.may_join(&[main]));
    }
    assert!(Attachment.may_join(&[Event]) && Attachment.may_join(&[Transaction, Attachment]));
    assert!(!Attachment.may_join(&[Log]) && !Attachment.may_join(&[CheckIn]));
    assert!(!Log.may_join(&[Attachment]) && Event.may_join(&[Attachment, Attachment]));
    assert!(all.iter().all(|t| t.may_join(&[])));
    assert_eq!(Event.category(), Some(DataCategory::Error));
    assert_eq!(Log.category(), Some(DataCategory::LogItem));
    assert_eq!(CheckIn.category(), Some(DataCategory::Monitor));
    assert_eq!(ClientReport.category(), None, "the SDK's own bookkeeping is never rate limited");

    let mut envelope = Envelope::from_event(isoscope::Event::message("a", Level::Info));
    let refused = envelope.push(EnvelopeItem::CheckIn(isoscope::protocol::CheckIn::new("x", CheckInStatus::Ok)));
    assert!(matches!(refused, Err(EnvelopeItem::CheckIn(_))), "the item comes back");
}

/// Keeps envelopes as given, unfinished.
#[derive(Default, Clone)]
struct Keep(std::sync::Arc<std::sync::Mutex<Vec<Envelope>>>);

impl Transport for Keep {
    fn send(&self, envelope: Envelope) {
        self.0.lock().unwrap().push(envelope);
    }
}

#[test]
fn a_captures_deferred_work_runs_only_when_finish_is_called() {
    let keep = Keep::default();
    let client = isoscope::Client::new(isoscope::Options::new().transport(keep.clone())).unwrap();
    client.new_scope().run(|| {
        isoscope::set_extra("api_token", "s3cret");
        isoscope::capture_message("deferred", Level::Error);
    });
    let envelope = keep.0.lock().unwrap().pop().unwrap();
    // Its kinds are known at once; looking at it does no work.
    assert_eq!(envelope.item_types().collect::<Vec<_>>(), [ItemType::Event]);
    let shown = format!("{envelope:?}");
    assert!(shown.contains("finished: false") && !shown.contains("deferred"), "{shown}");
    assert!(!envelope.is_finished());
    let finished = envelope.finish();
    let event = finished.event().unwrap();
    assert_eq!(event.message.as_deref(), Some("deferred"));
    assert_eq!(event.extra["api_token"], "[Filtered]", "finishing scrubs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_transport_drops_only_the_rate_limited_items() {
    let server = Ingest::start(Answer::Accept).await;
    // The first answer limits attachments only.
    server.script([Answer::AcceptWithRateLimits("60:attachment:key")]);
    let transport = HttpTransport::builder(&server.dsn()).unwrap().build().unwrap();
    let with_attachment = || {
        let mut e = Envelope::from_event(Event::message("with a file", Level::Error));
        e.push(EnvelopeItem::Attachment(Attachment::new("a.txt", "hello"))).unwrap();
        e
    };
    transport.send(with_attachment());
    assert!(transport.flush(Duration::from_secs(10)));
    transport.send(with_attachment());
    assert!(!transport.flush(Duration::from_secs(10)), "the attachment was left out: not all delivered");
    // Attachments alone are dropped before a request is made.
    let mut alone = Envelope::new();
    alone.push(EnvelopeItem::Attachment(Attachment::new("b.txt", "x"))).unwrap();
    transport.send(alone);
    assert!(!transport.flush(Duration::from_secs(10)), "dropped for the rate limit");
    transport.shutdown(Duration::from_secs(1));
    let received = server.received();
    assert_eq!(received.len(), 2, "the attachment-only envelope was dropped locally");
    let kinds =
        |i: usize| received[i].items.iter().map(|(h, _)| h["type"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(kinds(0), ["event", "attachment"]);
    assert_eq!(kinds(1), ["event"], "the limited attachment was left out, the event sent");
    assert_eq!(received[0].items[1].1, "hello");
}
