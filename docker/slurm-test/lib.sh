# Settings and helpers shared by up.sh and down.sh (sourced, not run).
#
# Environment (all optional):
#   HPCGATE_SLURM_DIR       state directory (default /var/tmp/hpcgate-slurm)
#   HPCGATE_SLURM_DB_HOST   MariaDB host (127.0.0.1)    HPCGATE_SLURM_DB_PORT  (3306)
#   HPCGATE_SLURM_DB_USER   (root)                      HPCGATE_SLURM_DB_PASS  (empty)
#   HPCGATE_SLURM_DB_NAME   accounting database (hpcgate_slurm_acct)
#   HPCGATE_SLURM_TIMEOUT   seconds up.sh waits for each daemon (90)

DIR=${HPCGATE_SLURM_DIR:-/var/tmp/hpcgate-slurm}
CLUSTER=lumi
PARTITION=standard-g
# Two slurmd on this one machine: Slurm 22.05 did not place two components of a heterogeneous job
# on the same node (a het job stayed pending on one node), so het jobs need a second node.
NODES=(nid000001 nid000002)
declare -A SLURMD_PORT=([nid000001]=16818 [nid000002]=16820)
CTLD_PORT=16817
DBD_PORT=16819
DB_HOST=${HPCGATE_SLURM_DB_HOST:-127.0.0.1}
DB_PORT=${HPCGATE_SLURM_DB_PORT:-3306}
DB_USER=${HPCGATE_SLURM_DB_USER:-root}
DB_PASS=${HPCGATE_SLURM_DB_PASS:-}
DB_NAME=${HPCGATE_SLURM_DB_NAME:-hpcgate_slurm_acct}
TIMEOUT=${HPCGATE_SLURM_TIMEOUT:-90}

ETC=$DIR/etc
LOG=$DIR/log
RUN=$DIR/run
MUNGE_DIR=$DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munged.socket

say() { printf 'slurm-test: %s\n' "$*"; }
die() { printf 'slurm-test: ERROR: %s\n' "$*" >&2; exit 1; }

# running PIDFILE COMM: true when PIDFILE names a live process called COMM (neither a pid reused
# by another program after a crash or reboot, nor a killed daemon not yet reaped, counts).
running() {
  local pid state
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# stop PIDFILE COMM: SIGTERM, up to 10 s for it to exit, then SIGKILL; removes the pid file.
stop() {
  local pidfile=$1 comm=$2 pid
  if running "$pidfile" "$comm"; then
    pid=$(cat "$pidfile")
    say "stopping $comm ($pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -d "/proc/$pid" ] || break
      sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# stop_slurmds: every node's slurmd at once.
stop_slurmds() {
  local node
  for node in "${NODES[@]}"; do stop "$RUN/slurmd-$node.pid" slurmd & done
  wait
}
