//! Sentry's published event schema (`tests/schema/event.schema.json`, vendored with its
//! provenance): every event the tests look at is checked against it.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use isoscope::{Event, Transaction};
use serde_json::{json, Map, Value};

/// The event object of the vendored schema, with its definitions.
fn event_schema() -> Map<String, Value> {
    let mut schema: Value = serde_json::from_str(include_str!("../schema/event.schema.json")).unwrap();
    // The top level is `anyOf: [{event object}]`: validating against the object itself
    // makes the errors name the offending fields instead of "not valid under anyOf".
    let mut object = schema["anyOf"][0].as_object().cloned().unwrap();
    // The schema types trace and span ids as any string; its descriptions (and Relay, which
    // parses them) say 32 and 16 hex digits.
    let definitions = &mut schema["definitions"];
    definitions["TraceId"]["anyOf"][0]["pattern"] = "^[0-9a-f]{32}$".into();
    definitions["SpanId"]["anyOf"][0]["pattern"] = "^[0-9a-f]{16}$".into();
    object.insert("definitions".into(), definitions.take());
    object.insert("$schema".into(), schema["$schema"].take());
    object
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| jsonschema::validator_for(&Value::Object(event_schema())).unwrap())
}

/// The schema of transaction events: the event schema plus the fields Relay's `Event` model
/// keeps out of the published schema (`start_timestamp`, `spans`, `measurements`:
/// `relay-event-schema/src/protocol/event.rs`, `omit_from_schema`), and a `Span` built from
/// Relay's `protocol/span.rs` out of the schema's own definitions (`SpanId`, `TraceId`,
/// `SpanStatus`, `Timestamp`, `SpanData`). Strict like the rest: unknown fields are errors.
fn transaction_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let mut schema = event_schema();
        let properties = schema["properties"].as_object_mut().unwrap();
        properties.insert("start_timestamp".into(), json!({ "$ref": "#/definitions/Timestamp" }));
        properties.insert("spans".into(), json!({ "type": "array", "items": { "$ref": "#/definitions/Span" } }));
        properties.insert("measurements".into(), json!({ "type": "object" }));
        let strings = json!({ "type": "object", "additionalProperties": { "type": "string" } });
        let span = json!({
            "type": "object",
            "required": ["timestamp", "start_timestamp", "span_id", "trace_id"],
            "properties": {
                "timestamp": { "$ref": "#/definitions/Timestamp" },
                "start_timestamp": { "$ref": "#/definitions/Timestamp" },
                "exclusive_time": { "type": "number" },
                "description": { "type": "string" },
                "op": { "type": "string" },
                "span_id": { "$ref": "#/definitions/SpanId" },
                "parent_span_id": { "$ref": "#/definitions/SpanId" },
                "trace_id": { "$ref": "#/definitions/TraceId" },
                "segment_id": { "$ref": "#/definitions/SpanId" },
                "is_segment": { "type": "boolean" },
                "status": { "$ref": "#/definitions/SpanStatus" },
                "tags": strings,
                "origin": { "type": "string" },
                "data": { "$ref": "#/definitions/SpanData" },
                "measurements": { "type": "object" }
            },
            "additionalProperties": false
        });
        schema["definitions"].as_object_mut().unwrap().insert("Span".into(), span);
        // A transaction must say what it is and when it started (Relay drops it otherwise).
        schema.insert("required".into(), json!(["type", "start_timestamp", "timestamp", "contexts"]));
        jsonschema::validator_for(&Value::Object(schema)).unwrap()
    })
}

/// `contexts.trace` checked against `TraceContext` itself: the schema's `Context` also admits
/// any object, so a misspelt trace field would pass the event schema unnoticed.
fn trace_context_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema = event_schema();
        let object = json!({
            "$schema": schema["$schema"],
            "definitions": schema["definitions"],
            "$ref": "#/definitions/TraceContext",
        });
        jsonschema::validator_for(&object).unwrap()
    })
}

fn errors_of(validator: &jsonschema::Validator, json: &Value) -> Vec<String> {
    let mut errors: Vec<String> =
        validator.iter_errors(json).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if let Some(trace) = json.get("contexts").and_then(|c| c.get("trace")) {
        // `type` names the context kind in every context; TraceContext's own fields are the rest.
        let mut trace = trace.clone();
        if let Some(object) = trace.as_object_mut() {
            object.remove("type");
        }
        errors.extend(
            trace_context_validator()
                .iter_errors(&trace)
                .map(|e| format!("{} at /contexts/trace{}", e, e.instance_path())),
        );
    }
    errors
}

/// The schema errors of an event's JSON, each with where it is.
pub fn errors(json: &Value) -> Vec<String> {
    errors_of(validator(), json)
}

/// The schema errors of a transaction's JSON, each with where it is.
pub fn transaction_errors(json: &Value) -> Vec<String> {
    errors_of(transaction_validator(), json)
}

/// Panics with every schema error of a transaction's JSON.
pub fn assert_valid_transaction_json(what: &str, json: &Value) {
    let errors = transaction_errors(json);
    assert!(errors.is_empty(), "{what}: {} schema errors:\n{}\n{json:#}", errors.len(), errors.join("\n"));
}

/// Checks every transaction, and hands them back.
pub fn valid_transactions(transactions: Vec<Transaction>) -> Vec<Transaction> {
    for (i, t) in transactions.iter().enumerate() {
        assert_valid_transaction_json(&format!("transaction {i}"), &serde_json::to_value(t).unwrap());
    }
    transactions
}

/// Panics with every schema error of an event's JSON.
pub fn assert_valid_json(what: &str, json: &Value) {
    let errors = errors(json);
    assert!(errors.is_empty(), "{what}: {} schema errors:\n{}\n{json:#}", errors.len(), errors.join("\n"));
}

/// Panics with every schema error of `event`.
pub fn assert_valid(what: &str, event: &Event) {
    assert_valid_json(what, &serde_json::to_value(event).unwrap());
}

/// Checks every event, and hands them back.
pub fn valid(events: Vec<Event>) -> Vec<Event> {
    for (i, event) in events.iter().enumerate() {
        assert_valid(&format!("event {i}"), event);
    }
    events
}
