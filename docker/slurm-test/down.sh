#!/usr/bin/env bash
# Stops the daemons that up.sh started (found by the pid files in its state directory).
#   bash docker/slurm-test/down.sh          # stop; jobs, accounts and usage are kept for the next up
#   bash docker/slurm-test/down.sh --wipe   # also cancel all jobs, drop the accounting database and
#                                           # remove the state directory
set -euo pipefail
# shellcheck source=docker/slurm-test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wipe=0
case "${1:-}" in
  --wipe) wipe=1 ;;
  "") ;;
  *) echo "usage: $0 [--wipe]" >&2; exit 2 ;;
esac

# A plain stop leaves running jobs alone (their slurmstepd reconnects to the next slurmd); a wipe
# cancels them first so that no job outlives its cluster.
if [ "$wipe" = 1 ] && running "$RUN/slurmctld.pid" slurmctld; then
  jobs=$(SLURM_CONF=$ETC/slurm.conf timeout 10 squeue -h -o %A 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086 # one job id a word
    SLURM_CONF=$ETC/slurm.conf timeout 10 scancel $jobs || true
    sleep 3
  fi
fi

# Compute nodes first, then the controller, the accounting daemon, and munge last.
stop_slurmds
stop "$RUN/slurmctld.pid" slurmctld
stop "$RUN/slurmdbd.pid" slurmdbd
stop "$RUN/munged.pid" munged

if [ "$wipe" = 1 ]; then
  say "dropping database $DB_NAME and removing $DIR"
  mysql_args=(-h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER")
  [ -n "$DB_PASS" ] && mysql_args+=(-p"$DB_PASS")
  mysql "${mysql_args[@]}" -e "DROP DATABASE IF EXISTS \`$DB_NAME\`"
  case "$DIR" in
    / | /var | /var/tmp | /tmp | "") die "refusing to remove '$DIR'" ;;
  esac
  rm -rf "$DIR"
fi
say "down"
