#!/usr/bin/env bash
# Shows, on the running test cluster, that a QOS with Flags=NoDecay is a hard GPU budget while an
# ordinary QOS (and every association) forgets its usage with PriorityDecayHalfLife (1 minute here).
# Takes about six minutes; creates the Unix user hpcgate_demo and the accounts/QOS demo_hard and
# demo_soft (removed first if they exist). Run as root after up.sh.
set -euo pipefail
# shellcheck source=docker/slurm-test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export SLURM_CONF=$ETC/slurm.conf
cd /tmp

run() { printf '$ %s\n' "$*"; "$@"; }
as_user() { runuser -u hpcgate_demo -- "$@"; }
usage() {
  # GrpTRESMins=LIMIT(USED GPU-minutes, rounded down); UsageRaw is the (decayed) billing-seconds.
  echo "--- $(date +%T)"
  scontrol show assoc_mgr flags=qos qos=demo_hard,demo_soft | sed -n \
    -e 's/^QOS=\([a-z_]*\).*/qos \1/p' \
    -e 's/^ *UsageRaw=\(.*\)/    UsageRaw=\1/p' \
    -e 's/.*GrpTRESMins=.*\(gres\/gpu=[^,]*\).*/    GrpTRESMins \1/p'
  scontrol show assoc_mgr flags=assoc accounts=demo_hard | sed -n \
    -e 's/.*Account=\([a-z_]*\) UserName= .*/account \1/p' \
    -e 's/.*Account=\([a-z_]*\) UserName=\([a-z_]*\).*/user \2 in \1/p' \
    -e 's/^ *UsageRaw\/Norm\/Efctv=\([^/]*\).*/    UsageRaw=\1/p' \
    -e 's/.*GrpTRESMins=.*\(gres\/gpu=[^,]*\).*/    GrpTRESMins \1/p'
}
wait_done() {
  while [ -n "$(squeue -h -j "$1" -o %T 2>/dev/null)" ]; do sleep 2; done
}

id hpcgate_demo >/dev/null 2>&1 || useradd --create-home hpcgate_demo
sacctmgr -i delete account name=demo_hard,demo_soft >/dev/null 2>&1 || true
sacctmgr -i delete qos name=demo_hard,demo_soft >/dev/null 2>&1 || true

echo "=== a QOS per allocation, one that never forgets and one that decays"
run sacctmgr -i add qos demo_hard Flags=NoDecay GrpTRESMins=gres/gpu=10
run sacctmgr -i add qos demo_soft GrpTRESMins=gres/gpu=10
run sacctmgr -i add account demo_hard,demo_soft
run sacctmgr -i modify account demo_hard set qos=demo_hard defaultqos=demo_hard
run sacctmgr -i modify account demo_soft set qos=demo_soft defaultqos=demo_soft
run sacctmgr -i add user hpcgate_demo account=demo_hard,demo_soft
run sacctmgr -nP show assoc account=demo_hard,demo_soft format=account,user,qos,defaultqos

echo "=== one minute on 4 GPUs under each (4 GPU-minutes of the 10)"
h=$(as_user sbatch --parsable -A demo_hard --gres=gpu:4 -t 2 -o /dev/null --wrap 'sleep 60')
s=$(as_user sbatch --parsable -A demo_soft --gres=gpu:4 -t 2 -o /dev/null --wrap 'sleep 60')
sleep 2
squeue -o '%.8i %.10a %.10q %.8T %r'
wait_done "$h"; wait_done "$s"
usage
for _ in 1 2 3; do sleep 60; usage; done

echo "=== 4 GPUs for up to 2 minutes needs 8 GPU-minutes: too much for demo_hard (6 left, safe)"
h=$(as_user sbatch --parsable -A demo_hard --gres=gpu:4 -t 2 -o /dev/null --wrap 'sleep 5')
s=$(as_user sbatch --parsable -A demo_soft --gres=gpu:4 -t 2 -o /dev/null --wrap 'sleep 5')
sleep 3
squeue -o '%.8i %.10a %.10q %.8T %r'
echo "=== a bigger grant lets it start"
run sacctmgr -i modify qos demo_hard set GrpTRESMins=gres/gpu=20
sleep 12
sacct -X -j "$h,$s" -o JobID,Account,QOS,State,Start
wait_done "$h"
usage

echo "=== GrpSubmitJobs=0 on the account blocks submission, -1 lifts it"
run sacctmgr -i modify account demo_hard set GrpSubmitJobs=0
as_user sbatch --parsable -A demo_hard --gres=gpu:1 -t 1 -o /dev/null --wrap true || echo "(refused, exit $?)"
run sacctmgr -i modify account demo_hard set GrpSubmitJobs=-1
as_user sbatch --parsable -A demo_hard --gres=gpu:1 -t 1 -o /dev/null --wrap true
