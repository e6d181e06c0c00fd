#!/usr/bin/env bash
# Brings up the hpcgate Slurm test cluster "lumi" on this machine: munged, slurmdbd (accounting in
# MariaDB), slurmctld and two slurmd, all on ports and files of their own (see README.md).
# Safe to run again: it installs only missing packages, rewrites its configuration, (re)starts a
# daemon only when it is not running or its configuration changed, and waits until the nodes are idle.
#
#   bash docker/slurm-test/up.sh                # as root; then: source /var/tmp/hpcgate-slurm/env.sh
#
# Settings come from lib.sh (HPCGATE_SLURM_DIR, HPCGATE_SLURM_DB_*, HPCGATE_SLURM_TIMEOUT).
set -euo pipefail
started_at=$(date +%s%N)
# shellcheck source=docker/slurm-test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || die "run me as root (daemons, stand-in GPU devices and apt need it)"
export SLURM_CONF=$ETC/slurm.conf

# --- packages ---------------------------------------------------------------------------------
missing=()
for pkg in slurmctld slurmd slurm-client slurmdbd munge mariadb-client; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them"
  say "installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  # Postinst scripts may try to start the system-wide services; without an init system they
  # cannot, and this cluster never uses them, so their complaints are not errors here.
  apt_log=$(mktemp -t hpcgate-slurm-apt.XXXXXX)
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    slurm-wlm slurmdbd munge mariadb-client >"$apt_log" 2>&1 \
    || { tail -n 20 "$apt_log" >&2; die "apt-get install failed (full log: $apt_log)"; }
  rm -f "$apt_log"
fi

# --- state directory --------------------------------------------------------------------------
# Everything readable (job submitters must reach the munge socket); the key itself is 0400.
install -d -m 0755 "$DIR" "$ETC" "$LOG" "$RUN" "$DIR/ctld" "$DIR/spool" "$DIR/dev" "$MUNGE_DIR"

# Stand-in GPUs: character devices with the numbers of /dev/null, one per GPU.
for i in 0 1 2 3 4 5 6 7; do
  dev=$DIR/dev/gpu$i
  if [ ! -c "$dev" ]; then
    rm -f "$dev"
    mknod -m 0666 "$dev" c 1 3 || die "cannot create the stand-in GPU device $dev (mknod needs root outside a restricted container)"
  fi
done

# --- configuration ----------------------------------------------------------------------------
changed=()
# put FILE MODE: writes stdin to FILE when the content differs; remembers which files changed.
put() {
  local file=$1 mode=$2 tmp
  tmp=$(mktemp "$file.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$file"
    changed+=("$(basename "$file")")
  fi
}

CTLD_HOST=$(hostname -s)

put "$ETC/slurm.conf" 0644 <<EOF
# Written by hpcgate docker/slurm-test/up.sh; edits are overwritten.
ClusterName=$CLUSTER
SlurmctldHost=$CTLD_HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=${SLURMD_PORT[nid000001]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
LaunchParameters=use_interactive_step

# A node that declares more than the machine has (this is a test rig, not a benchmark).
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10
InactiveLimit=0
KillWait=2
MinJobAge=10
Waittime=0
BatchStartTimeout=10
CompleteWait=0
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5,sched_interval=5,sched_min_interval=0

SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu

AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# For slurmdbd connections Slurm takes the munge socket from here, not from AuthInfo.
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations,limits,qos,safe

# Fair share decays fast here so that tests can see decay; hard budgets use a NoDecay QOS.
PriorityType=priority/multifactor
PriorityDecayHalfLife=00:01:00
PriorityCalcPeriod=1
PriorityWeightFairshare=10000
PriorityWeightAge=1000
PriorityWeightQOS=1000

$(for node in "${NODES[@]}"; do
  echo "NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node Port=${SLURMD_PORT[$node]} CPUs=64 RealMemory=512000 Gres=gpu:8 State=UNKNOWN"
done)
PartitionName=$PARTITION Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES DefaultTime=00:10:00 MaxTime=1-00:00:00 State=UP
EOF

put "$ETC/gres.conf" 0644 <<EOF
# Written by hpcgate docker/slurm-test/up.sh: eight stand-in GPUs (character devices 1,3) a node.
AutoDetect=off
$(for node in "${NODES[@]}"; do echo "NodeName=$node Name=gpu File=$DIR/dev/gpu[0-7]"; done)
EOF

# (process substitution, not a pipe: put must run in this shell to record the change)
put "$ETC/slurmdbd.conf" 0600 < <(
  cat <<EOF
# Written by hpcgate docker/slurm-test/up.sh; edits are overwritten.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=$DB_HOST
StoragePort=$DB_PORT
StorageUser=$DB_USER
StorageLoc=$DB_NAME
EOF
  if [ -n "$DB_PASS" ]; then printf 'StoragePass=%s\n' "$DB_PASS"; fi
)

put "$DIR/env.sh" 0644 <<EOF
# Source me to talk to the hpcgate Slurm test cluster.
export SLURM_CONF=$ETC/slurm.conf
export HPCGATE_SLURM_DIR=$DIR
export HPCGATE_SLURM_CLUSTER=$CLUSTER
EOF

# --- daemons ----------------------------------------------------------------------------------
# wait_for WHAT COMMAND...: retries COMMAND until it succeeds or TIMEOUT seconds pass.
wait_for() {
  local what=$1 deadline=$(($(date +%s) + TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      die "$what did not come up within ${TIMEOUT}s; see the logs in $LOG"
    fi
    sleep 0.5
  done
}

is_changed() {
  local f
  for f in "${changed[@]}"; do [ "$f" = "$1" ] && return 0; done
  return 1
}

# munge: a key and a socket of our own, so the system's munged (if any) is never touched.
if [ ! -s "$MUNGE_DIR/munge.key" ]; then
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile="$MUNGE_DIR/munge.key"
  else
    dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
  fi
  chmod 0400 "$MUNGE_DIR/munge.key"
  stop "$RUN/munged.pid" munged
fi
if ! running "$RUN/munged.pid" munged; then
  say "starting munged"
  munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
    --pid-file="$RUN/munged.pid" --log-file="$LOG/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
fi
munge_ok() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }
wait_for munged munge_ok

mysql_args=(-h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" --connect-timeout=5)
[ -n "$DB_PASS" ] && mysql_args+=(-p"$DB_PASS")
mysql "${mysql_args[@]}" -e 'SELECT 1' >/dev/null 2>&1 \
  || die "MariaDB does not answer on $DB_HOST:$DB_PORT as $DB_USER (set HPCGATE_SLURM_DB_*)"

# slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF.
if is_changed slurmdbd.conf; then stop "$RUN/slurmdbd.pid" slurmdbd; fi
if ! running "$RUN/slurmdbd.pid" slurmdbd; then
  say "starting slurmdbd (database $DB_NAME on $DB_HOST:$DB_PORT)"
  slurmdbd
fi
wait_for slurmdbd sacctmgr -nP show cluster format=cluster

if ! sacctmgr -nP show cluster format=cluster | grep -qx "$CLUSTER"; then
  say "registering cluster $CLUSTER"
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi

if is_changed slurm.conf || is_changed gres.conf; then
  stop_slurmds
  stop "$RUN/slurmctld.pid" slurmctld
fi
if ! running "$RUN/slurmctld.pid" slurmctld; then
  say "starting slurmctld on port $CTLD_PORT"
  slurmctld
fi
wait_for slurmctld scontrol ping
for node in "${NODES[@]}"; do
  if ! running "$RUN/slurmd-$node.pid" slurmd; then
    say "starting slurmd for node $node on port ${SLURMD_PORT[$node]}"
    slurmd -N "$node"
  fi
done

node_idle() {
  local state
  state=$(sinfo -h -n "$1" -o %T 2>/dev/null) || return 1
  case "$state" in
    idle|mixed|allocated|completing) return 0 ;;
    down*|drain*|fail*)
      # A node that was down when the daemons stopped is brought back; its jobs are long gone.
      scontrol update nodename="$1" state=resume >/dev/null 2>&1 || true
      return 1 ;;
    *) return 1 ;;
  esac
}
for node in "${NODES[@]}"; do wait_for "node $node" node_idle "$node"; done

elapsed=$((($(date +%s%N) - started_at) / 1000000))
say "cluster $CLUSTER is up in $((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000)))s: source $DIR/env.sh"
