//! Sentry's published event schema (`tests/schema/event.schema.json`, vendored with its
//! provenance): every event the tests look at is checked against it.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use isoscope::Event;
use serde_json::Value;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let mut schema: Value = serde_json::from_str(include_str!("../schema/event.schema.json")).unwrap();
        // The top level is `anyOf: [{event object}]`: validating against the object itself
        // makes the errors name the offending fields instead of "not valid under anyOf".
        let event = schema["anyOf"][0].clone();
        let mut object = event.as_object().cloned().unwrap();
        object.insert("definitions".into(), schema["definitions"].take());
        object.insert("$schema".into(), schema["$schema"].take());
        jsonschema::validator_for(&Value::Object(object)).unwrap()
    })
}

/// The schema errors of an event's JSON, each with where it is.
pub fn errors(json: &Value) -> Vec<String> {
    validator().iter_errors(json).map(|e| format!("{} at {}", e, e.instance_path())).collect()
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
