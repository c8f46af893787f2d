#!/usr/bin/env bash
# A local Bugsink (a Sentry-compatible server, installed from PyPI into a virtualenv) for the
# end-to-end tests. Loopback only: it listens on 127.0.0.1 and sends nothing anywhere else.
#
#   scripts/bugsink.sh start     # installs on first use (~25 s), starts, prints the DSN (one line)
#   scripts/bugsink.sh events [--event-id HEX ...]   # stored events as JSON lines
#   scripts/bugsink.sh stop
#
# Environment: BUGSINK_HOME (default /tmp/isoscope-bugsink), BUGSINK_PORT (default 8765),
# BUGSINK_FRESH=1 (wipe stored events on start); see scripts/bugsink/start.sh for the rest.
# Needs python3 >= 3.11 with venv and pip, flock and setsid (util-linux).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bugsink"
cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) exec bash "$here/start.sh" "$@" ;;
  stop) exec bash "$here/stop.sh" "$@" ;;
  events) exec bash "$here/events.sh" "$@" ;;
  *) echo "usage: $0 start|stop|events [options]" >&2; exit 2 ;;
esac
