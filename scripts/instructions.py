#!/usr/bin/env python3
"""Deterministic cost figures: instructions counted by valgrind's callgrind, per request and per
capture and per log record, checked against the budgets in benches/budgets.json.

    python3 scripts/instructions.py [--check] [--json FILE]

Runs benches/compare's release binaries under `valgrind --tool=callgrind`: every figure is the
difference between a run of N2 and a run of N1 iterations, divided by N2 - N1, so start-up,
set-up and exit cancel out. Per request: `isoscope-compare --profile <variant> --requests N
--tasks 1` (one request at a time on the 2-worker runtime) for bare, noop (a pass-through layer:
what axum's re-boxing of a layered route costs any layer), floor, floor+body+clock (the floor
plus the response-body wrapper and breadcrumb clock the design requires) and isoscope; "added" is a
variant's count minus bare's. Per capture: `capture --profile <kind> --captures N`
(100 breadcrumbs and 10 tags in scope; `iso-message`/`iso-error` with a transport that drops
the envelope, so this is the calling thread's work; `iso-message-finished` also finishes the
event, the work deferred to the transport's thread). Per log: `logs --profile <bare|iso|sentry>
--logs N` under `--separate-threads=yes`, the main thread's count only (the batching threads'
work is not the caller's); "added" is minus bare's.

The in-process request is built as hyper builds it (target and header values slices of one
shared buffer). Over HTTP: `http --serve <variant>` (one worker thread) under callgrind answers
N requests a client sends one at a time over one keep-alive connection on loopback, the same
request as the in-process one; the figure is the serving thread's (the busiest thread's) count,
so hyper's parsing and writing are in it, and "added" is minus bare's.

With --check, exits 1 when isoscope's added instructions per request exceed the floor's by more
than `max_added_vs_floor` (in process) or `max_added_vs_floor_http` (over HTTP), or a capture or
log figure exceeds its budget (the figure measured when the budget was set, + 20 %).
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "benches", "compare", "target", "release")
REQUESTS = (1000, 3000)
CAPTURES = (1000, 3000)
LOGS = (1000, 3000)


def instructions(args):
    """Instructions of one run of a compare binary under callgrind (all threads)."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args],
        capture_output=True, text=True, cwd="/tmp",
    )
    if out.returncode != 0:
        sys.exit(f"instructions: {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    m = re.search(r"Collected : (\d+)", out.stderr)
    if not m:
        sys.exit(f"instructions: no callgrind total in the output of {' '.join(args)}")
    return int(m.group(1))


def calling_thread_instructions(args):
    """Instructions of the main thread of one run under callgrind (threads counted apart)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg")
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}", *args],
            capture_output=True, text=True, cwd="/tmp",
        )
        if run.returncode != 0:
            sys.exit(f"instructions: {' '.join(args)} failed:\n{run.stderr[-2000:]}")
        with open(out + "-01") as f:
            m = re.search(r"^summary: (\d+)", f.read(), re.M)
        if not m:
            sys.exit(f"instructions: no summary for the main thread of {' '.join(args)}")
        return int(m.group(1))


# The compare bench's request, as a client sends it (hyper parses it into the request the layer
# sees over real HTTP: every header value a slice of one shared read buffer).
HTTP_REQUEST = (
    b"GET /items/42?page=2 HTTP/1.1\r\nhost: shop.example\r\nuser-agent: bench/1.0\r\n"
    b"accept: application/json\r\naccept-encoding: gzip, br\r\ncookie: session=abc\r\n\r\n"
)


def drive(addr, n):
    """Sends `n` requests one at a time over one keep-alive connection; checks every answer."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=120) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answers = conn.makefile("rb")
        for _ in range(n):
            conn.sendall(HTTP_REQUEST)
            status, length = answers.readline(), None
            while (line := answers.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if not status.startswith(b"HTTP/1.1 200") or length is None or answers.read(length) != b"ok":
                sys.exit(f"instructions: unexpected answer over HTTP: {status!r}")


def served_instructions(variant, n):
    """Instructions of the busiest thread (the runtime's one worker: accept, parse, route, the
    layer, write) of `http --serve <variant>` under callgrind while it answers `n` requests."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}",
             os.path.join(TARGET, "http"), "--serve", variant, "--rate", "0",
             # Nothing is captured (rate 0); a DSN no server answers on.
             "--ingest", "http://public@127.0.0.1:9/1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/tmp",
        )
        try:
            line = server.stdout.readline().decode()
            if not line.startswith("listening "):
                sys.exit(f"instructions: http --serve {variant} did not start:\n{server.stderr.read().decode()[-2000:]}")
            drive(line.split()[1], n)
        finally:
            server.stdin.close()
            server.wait(timeout=300)
        totals = []
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name)) as f:
                m = re.search(r"^summary: (\d+)", f.read(), re.M)
                if m:
                    totals.append(int(m.group(1)))
        if not totals:
            sys.exit(f"instructions: no callgrind totals for http --serve {variant}")
        return max(totals)


def per_http_request(variant):
    """A request's instructions on the serving thread over real HTTP (loopback)."""
    lo, hi = (served_instructions(variant, n) for n in REQUESTS)
    return (hi - lo) / (REQUESTS[1] - REQUESTS[0])


def per_log(kind):
    """A `tracing::info!` call's instructions on the calling thread (`logs --profile`)."""
    lo, hi = (calling_thread_instructions([os.path.join(TARGET, "logs"), "--profile", kind, "--logs", str(n)]) for n in LOGS)
    return (hi - lo) / (LOGS[1] - LOGS[0])


def per_iteration(binary, flag, count_flag, counts, *extra):
    lo, hi = (instructions([os.path.join(TARGET, binary), flag, *extra, count_flag, str(n)]) for n in counts)
    return (hi - lo) / (counts[1] - counts[0])


def main():
    check = "--check" in sys.argv
    with open(os.path.join(ROOT, "benches", "budgets.json")) as f:
        budgets = json.load(f)
    figures = {}
    for variant in ("bare", "noop", "floor", "floor+body+clock", "isoscope"):
        figures[variant] = per_iteration("isoscope-compare", "--profile", "--requests", REQUESTS, variant, "--tasks", "1")
    figures["sentry"] = per_iteration("isoscope-compare", "--profile", "--requests", REQUESTS, "sentry", "--tasks", "1")
    for variant in ("isoscope", "sentry"):
        figures[f"{variant}_traced"] = per_iteration(
            "isoscope-compare", "--profile", "--requests", REQUESTS, variant, "--tasks", "1", "--with-traces"
        )
    figures["noop_added"] = figures["noop"] - figures["bare"]
    figures["floor_added"] = figures["floor"] - figures["bare"]
    figures["floor_plus_added"] = figures["floor+body+clock"] - figures["bare"]
    figures["sentry_added"] = figures["sentry"] - figures["bare"]
    figures["isoscope_traced_added"] = figures["isoscope_traced"] - figures["bare"]
    figures["sentry_traced_added"] = figures["sentry_traced"] - figures["bare"]
    figures["isoscope_added"] = figures["isoscope"] - figures["bare"]
    figures["added_vs_floor"] = figures["isoscope_added"] / figures["floor_added"]
    for variant in ("bare", "noop", "floor", "floor+body+clock", "isoscope"):
        figures[f"http-{variant}"] = per_http_request(variant)
    for variant in ("noop", "floor", "floor+body+clock", "isoscope"):
        figures[f"http-{variant}-added"] = figures[f"http-{variant}"] - figures["http-bare"]
    figures["http_added_vs_floor"] = figures["http-isoscope-added"] / figures["http-floor-added"]
    for kind in ("iso-message", "iso-error", "iso-message-finished", "sentry-message", "sentry-error"):
        figures[kind] = per_iteration("capture", "--profile", "--captures", CAPTURES, kind)

    for kind in ("bare", "iso", "sentry"):
        figures[f"log-{kind}"] = per_log(kind)
    figures["log-iso-added"] = figures["log-iso"] - figures["log-bare"]
    figures["log-sentry-added"] = figures["log-sentry"] - figures["log-bare"]

    print("instructions (callgrind; per request: one at a time, 2-worker runtime; per capture: 100 breadcrumbs, 10 tags;")
    print("per log: a tracing::info! with 3 fields in a request, breadcrumb + log, the calling thread's count)")
    print("| figure | instructions | budget |")
    print("| --- | ---: | ---: |")
    failures = []
    rows = [
        ("bare, per request", "bare", None),
        ("a pass-through layer added per request (axum re-boxes a layered route; in every figure below)", "noop_added", None),
        ("floor added per request", "floor_added", None),
        ("floor+body+clock added per request (the floor plus the body wrapper and clock the design requires)", "floor_plus_added", None),
        ("isoscope added per request", "isoscope_added", None),
        ("sentry-tower added per request (for reference)", "sentry_added", None),
        ("isoscope added, every request sampled (traces_sample_rate 1.0)", "isoscope_traced_added", None),
        ("sentry-tower added, enable_transaction, every request sampled", "sentry_traced_added", None),
    ]
    for label, key, _ in rows:
        print(f"| {label} | {figures[key]:,.0f} | |")
    limit = budgets["max_added_vs_floor"]
    print(f"| isoscope added / floor added | {figures['added_vs_floor']:.3f} | <= {limit} |")
    print(f"| isoscope added / floor+body+clock added (reference) | {figures['isoscope_added'] / figures['floor_plus_added']:.3f} | |")
    if figures["added_vs_floor"] > limit:
        failures.append(f"isoscope adds {figures['added_vs_floor']:.3f}x the floor's instructions per request (limit {limit})")
    for label, key in (
        ("over HTTP: bare, per request (hyper parses, axum routes, one worker thread)", "http-bare"),
        ("over HTTP: a pass-through layer added per request", "http-noop-added"),
        ("over HTTP: floor added per request", "http-floor-added"),
        ("over HTTP: floor+body+clock added per request", "http-floor+body+clock-added"),
        ("over HTTP: isoscope added per request", "http-isoscope-added"),
    ):
        print(f"| {label} | {figures[key]:,.0f} | |")
    limit = budgets["max_added_vs_floor_http"]
    print(f"| over HTTP: isoscope added / floor added | {figures['http_added_vs_floor']:.3f} | <= {limit} |")
    if figures["http_added_vs_floor"] > limit:
        failures.append(
            f"over HTTP, isoscope adds {figures['http_added_vs_floor']:.3f}x the floor's instructions per request (limit {limit})"
        )
    for kind in ("iso-message", "iso-error", "iso-message-finished"):
        budget = budgets["capture"][kind]
        print(f"| capture {kind} | {figures[kind]:,.0f} | <= {budget:,} |")
        if figures[kind] > budget:
            failures.append(f"capture {kind}: {figures[kind]:,.0f} instructions (budget {budget:,})")
    for kind in ("sentry-message", "sentry-error"):
        print(f"| capture {kind} (sentry-rust, for reference) | {figures[kind]:,.0f} | |")
    budget = budgets["log"]["iso-tracing-info-added"]
    print(f"| log: isoscope added per tracing::info! | {figures['log-iso-added']:,.0f} | <= {budget:,} |")
    if figures["log-iso-added"] > budget:
        failures.append(f"log: {figures['log-iso-added']:,.0f} instructions per tracing::info! (budget {budget:,})")
    print(f"| log: sentry-rust added per tracing::info! (for reference) | {figures['log-sentry-added']:,.0f} | |")
    ratio = figures["log-iso-added"] / figures["log-sentry-added"]
    print(f"| log: isoscope added / sentry-rust added | {ratio:.3f} | |")
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(figures, f, indent=1)
    if check and failures:
        print("\nover budget:\n  " + "\n  ".join(failures))
        sys.exit(1)
    if check:
        print("\nwithin budget")


if __name__ == "__main__":
    main()
