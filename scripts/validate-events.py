#!/usr/bin/env python3
"""Validates JSON-lines events (what the examples print) against Sentry's event schema.

    python scripts/validate-events.py FILE [FILE ...]

Uses conformance/tests/schema/event.schema.json (vendored, see conformance/tests/schema/README.md) and the `jsonschema`
package (the Bugsink virtualenv has it: $BUGSINK_HOME/venv/bin/python). Lines that are not
JSON objects with an `event_id` are skipped (an example's own output); exits 1 with every error
if any event is invalid, or if a file holds no events at all.
"""
import json
import pathlib
import sys

import jsonschema

root = pathlib.Path(__file__).resolve().parent.parent
schema = json.loads((root / "conformance/tests/schema/event.schema.json").read_text())
# The top level is `anyOf: [{event object}]`: validate against the object itself, so that the
# errors name the offending fields.
event_schema = dict(schema["anyOf"][0], definitions=schema["definitions"])
validator = jsonschema.Draft7Validator(event_schema)

failed = False
for name in sys.argv[1:]:
    count = 0
    for n, line in enumerate(pathlib.Path(name).read_text().splitlines(), 1):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or "event_id" not in event:
            continue
        count += 1
        for error in validator.iter_errors(event):
            failed = True
            where = "/".join(str(p) for p in error.absolute_path)
            print(f"{name}:{n}: {error.message} at /{where}")
    if count == 0:
        failed = True
        print(f"{name}: no events")
    else:
        print(f"{name}: {count} events checked against Sentry's schema")
sys.exit(1 if failed else 0)
