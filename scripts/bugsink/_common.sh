# Sourced by start.sh / stop.sh / events.sh. Not meant to be run directly.
# shellcheck shell=bash

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUGSINK_HOME="${BUGSINK_HOME:-/tmp/isoscope-bugsink}"
export BUGSINK_HOME

# Loopback only: make sure nothing we start routes 127.0.0.1 through a proxy from the environment.
export NO_PROXY="127.0.0.1,localhost,::1${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

log() { printf '[bugsink %s] %s\n' "${BUGSINK_SCRIPT:-?}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

abs_home() {
  mkdir -p "$BUGSINK_HOME"
  BUGSINK_HOME="$(cd "$BUGSINK_HOME" && pwd -P)"
  export BUGSINK_HOME
  VENV="$BUGSINK_HOME/venv"
  PY="$VENV/bin/python"
  LOG="$BUGSINK_HOME/server.log"
  PIDFILE="$BUGSINK_HOME/server.pid"
  PORTFILE="$BUGSINK_HOME/server.port"
  DSNFILE="$BUGSINK_HOME/dsn"
}

take_lock() {
  exec 9>"$BUGSINK_HOME/.lock"
  flock -w "${1:-600}" 9 || die "could not lock $BUGSINK_HOME/.lock (another start/stop running?)"
}

# alive and not a zombie
pid_alive() {
  local pid="$1" state
  [[ -r "/proc/$pid/status" ]] || return 1
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != "Z" && "$state" != "X" ]]
}

# the pid is the gunicorn master of *this* BUGSINK_HOME's venv
is_our_server() {
  local pid="$1" cmd
  pid_alive "$pid" || return 1
  cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *"$VENV/bin/gunicorn "* && "$cmd" == *" bugsink.wsgi"* ]]
}

recorded_pid() {
  local pid
  [[ -f "$PIDFILE" ]] || return 1
  pid="$(tr -dc '0-9' < "$PIDFILE")"
  [[ -n "$pid" ]] || return 1
  printf '%s\n' "$pid"
}

# Pids of our gunicorn processes (master or workers) in process group $1. start.sh runs gunicorn under setsid,
# so the group id is the recorded master pid; after a crash of the master, its orphaned workers are found this way.
our_group_members() {
  local pgid="$1" d p stat rest pgrp cmd
  for d in /proc/[0-9]*; do
    p="${d#/proc/}"
    stat="$(cat "$d/stat" 2>/dev/null)" || continue
    rest="${stat##*) }"
    read -r _ _ pgrp _ <<< "$rest"
    [[ "$pgrp" == "$pgid" ]] || continue
    cmd="$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null || true)"
    [[ "$cmd" == *"$VENV/bin/gunicorn "* ]] || continue
    pid_alive "$p" && printf '%s\n' "$p"
  done
  return 0
}

# Stop the server recorded in $PIDFILE (only our gunicorn: master, then any leftover workers of its group).
# Caller holds the lock. $1 = "quiet" to not log when there is nothing to stop.
stop_server() {
  local quiet="${1:-}" pid deadline left
  if ! pid="$(recorded_pid)"; then
    [[ "$quiet" == quiet ]] || log "not running (no pid file)"
    rm -f "$PIDFILE" "$PORTFILE"
    return 0
  fi
  if is_our_server "$pid"; then
    log "stopping gunicorn master pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + ${BUGSINK_STOP_TIMEOUT:-15}))
    while pid_alive "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
    if pid_alive "$pid"; then
      log "master still alive after ${BUGSINK_STOP_TIMEOUT:-15}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  else
    [[ "$quiet" == quiet ]] || log "recorded pid $pid is not running (stale pid file)"
  fi
  # leftover workers (only if the master died without taking them down)
  left="$(our_group_members "$pid")"
  if [[ -n "$left" ]]; then
    log "terminating leftover workers of group $pid: $(echo $left)"
    # shellcheck disable=SC2086
    kill -TERM $left 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while [[ -n "$(our_group_members "$pid")" ]] && (( SECONDS < deadline )); do sleep 0.1; done
    left="$(our_group_members "$pid")"
    # shellcheck disable=SC2086
    [[ -z "$left" ]] || kill -KILL $left 2>/dev/null || true
  fi
  rm -f "$PIDFILE" "$PORTFILE"
  [[ "$quiet" == quiet && -z "${left:-}" ]] || log "stopped"
}
