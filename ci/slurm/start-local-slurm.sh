#!/usr/bin/env bash
# (CI runs this script. It records the packages it installs, so that stop-local-slurm.sh --purge can remove them
# again.)
# start-local-slurm.sh -- start a throw-away single-node Slurm cluster on this
# machine (Debian 12, root, no systemd needed), for testing a Snakemake
# `profiles/slurm` profile end-to-end with snakemake-executor-plugin-slurm.
#
# What it does (idempotent: safe to run again, only starts what is not running):
#   1. apt-get installs munge + Debian's Slurm 22.05 (slurmctld, slurmd,
#      slurm-client) [+ slurmdbd + mariadb-server] if they are missing, and
#      records every package that install added (stop-local-slurm.sh --purge
#      removes them: installed Slurm clients with no controller running make
#      each later `snakemake` call wait ~10 s on `scontrol`).
#   2. writes /etc/slurm/slurm.conf, gres.conf [, slurmdbd.conf] (only if the
#      existing files were written by this script or do not exist).
#   3. creates fake GPU "devices" (private character-device nodes with the
#      numbers of /dev/null, in the state dir) so that `--gpus=1`,
#      `--gpus=<type>:1`, `--gres=gpu:1` jobs are schedulable on a machine
#      without a GPU. Jobs see CUDA_VISIBLE_DEVICES but no real device.
#   4. starts munged, [mariadbd, slurmdbd,] slurmctld, slurmd and waits until
#      `sinfo` shows the node idle.
#
# It provides: node $(hostname -s) in two partitions, cpu (default) and gpu,
# GRES gpu:h100:2, node feature h100 (so `-C h100` works), and in accounting
# mode the account `ci` (default account of the calling user).
#
# Usage:  sudo ./start-local-slurm.sh          # stop it with stop-local-slurm.sh
# Measured on a 2-core Debian 12 VM (apt installs included, fresh machine):
# 19-38 s with accounting, 10-13 s without; 1-4 s when the packages are
# already installed. The daemons keep running after the script exits.
#
# Settings (environment variables, all optional):
#   SLURM_LOCAL_ACCOUNTING=1   1: run slurmdbd + MariaDB so `sacct`/`sacctmgr`
#                              work (the plugin validates slurm_account; jobs
#                              with an unknown account are rejected).
#                              0: no accounting (sacct fails); the profile
#                              then needs `slurm-status-command: squeue`, and
#                              slurm_account is passed on unchecked.
#                              Either way use squeue (see README.md).
#   SLURM_LOCAL_ACCOUNT=ci     Slurm account created (accounting mode) and
#                              given to the current user as default account.
#   SLURM_LOCAL_CPUS=$(nproc)  CPUs the node advertises (may exceed the real
#                              count to let more tiny jobs run at once).
#   SLURM_LOCAL_MEM_MB=<total-1024>  RealMemory of the node.
#   SLURM_LOCAL_GPUS=2         number of fake GPUs (0 disables GRES).
#   SLURM_LOCAL_GPU_TYPE=h100  GRES type, so `--gpus=h100:1` works too.
#   SLURM_LOCAL_FEATURES=$SLURM_LOCAL_GPU_TYPE  node features (comma list), so
#                              a `constraint: h100` resource (-C h100) works.
#   SLURM_LOCAL_CPU_PARTITION=cpu   default partition name.
#   SLURM_LOCAL_GPU_PARTITION=gpu   partition for GPU jobs (same node).
#   SLURM_LOCAL_STATE_DIR=/var/spool/slurm-local   state, pid files, fake GPUs.
#   SLURM_LOCAL_LOG_DIR=/var/log/slurm-local       daemon logs.
#   SLURM_LOCAL_NO_INSTALL=1   never call apt-get.
#   SLURM_LOCAL_TIMEOUT=60     seconds to wait for the node to become idle.
set -euo pipefail

ACCOUNTING=${SLURM_LOCAL_ACCOUNTING:-1}
ACCOUNT=${SLURM_LOCAL_ACCOUNT:-ci}
CPUS=${SLURM_LOCAL_CPUS:-$(nproc)}
MEM_MB=${SLURM_LOCAL_MEM_MB:-$(( $(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo) - 1024 ))}
GPUS=${SLURM_LOCAL_GPUS:-2}
GPU_TYPE=${SLURM_LOCAL_GPU_TYPE:-h100}
FEATURES=${SLURM_LOCAL_FEATURES-$GPU_TYPE}
CPU_PART=${SLURM_LOCAL_CPU_PARTITION:-cpu}
GPU_PART=${SLURM_LOCAL_GPU_PARTITION:-gpu}
STATE=${SLURM_LOCAL_STATE_DIR:-/var/spool/slurm-local}
LOGS=${SLURM_LOCAL_LOG_DIR:-/var/log/slurm-local}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
CONF_DIR=/etc/slurm            # where Debian's Slurm clients look for slurm.conf
MARK="# managed by start-local-slurm.sh"
NODE=$(hostname -s)
STARTED="$STATE/started-by-start-local-slurm"   # daemons this script started
INSTALLED="$STATE/installed-by-start-local-slurm"   # packages this script installed
DB_PASS=slurm-local-ci         # local-only MariaDB password (loopback, test db)
T0=$(date +%s)

log() { echo "[start-local-slurm] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (writes /etc/slurm, starts daemons)"
case "$ACCOUNTING" in 0|1) ;; *) die "SLURM_LOCAL_ACCOUNTING must be 0 or 1" ;; esac
# munged (and others) die with 'Failed to open "/dev/null"' if it was replaced
[ -c /dev/null ] || die "/dev/null is not a character device (something replaced it);" \
    "repair with: rm -f /dev/null && mknod -m 666 /dev/null c 1 3"

# pid_alive PIDFILE NAME: true if PIDFILE names a live process whose comm is NAME
pid_alive() {
    local pf=$1 name=$2 pid
    [ -s "$pf" ] || return 1
    pid=$(cat "$pf")
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]
}
mark_started() { grep -qx "$1" "$STARTED" 2>/dev/null || echo "$1" >> "$STARTED"; }
wait_for() {   # wait_for SECONDS DESCRIPTION COMMAND...
    local t=$1 what=$2; shift 2
    local end=$(( $(date +%s) + t ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || die "timed out waiting for $what (logs: $LOGS)"
        sleep 0.5
    done
}

# ---------------------------------------------------------------- 1. install
need=()
command -v munged >/dev/null || need+=(munge)
command -v slurmctld >/dev/null || need+=(slurmctld)
command -v sbatch >/dev/null || need+=(slurm-client)
command -v slurmd >/dev/null || need+=(slurmd)
if [ "$ACCOUNTING" = 1 ]; then
    command -v slurmdbd >/dev/null || need+=(slurmdbd)
    command -v mariadbd >/dev/null || need+=(mariadb-server)
fi
if [ ${#need[@]} -gt 0 ]; then
    [ "${SLURM_LOCAL_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${need[*]}"
    log "installing ${need[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    log "apt-get update done after $(( $(date +%s) - T0 )) s"
    installed_packages() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sort; }
    before=$(installed_packages)
    # Without systemd the packages' own service starts fail or are skipped
    # (policy-rc.d); this script starts the daemons itself below.
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    mkdir -p "$STATE"
    comm -13 <(echo "$before") <(installed_packages) >> "$INSTALLED"
    log "packages installed after $(( $(date +%s) - T0 )) s (recorded in $INSTALLED)"
fi

mkdir -p "$STATE/ctld" "$STATE/d" "$LOGS"
touch "$STARTED"

# ---------------------------------------------------------------- 2. config
# Fake GPUs: Slurm 22.05 drops a gpu GRES without File= ("Removing file-less
# GPU"), and File= must be a character/block device. We create our own device
# nodes with /dev/null's numbers (1,3) in the state dir. (Do not point File= at
# /dev/null itself, e.g. via a symlink: anything that chmods/removes a GPU
# device file would then hit the system's /dev/null.)
gres_node="" ; gres_conf="$MARK"$'\n'
if [ "$GPUS" -gt 0 ]; then
    for i in $(seq 0 $((GPUS - 1))); do
        dev="$STATE/fake-gpu$i"
        if [ -L "$dev" ] || { [ -e "$dev" ] && [ ! -c "$dev" ]; }; then rm -f "$dev"; fi
        [ -c "$dev" ] || mknod -m 666 "$dev" c 1 3
    done
    gres_node="Gres=gpu:$GPU_TYPE:$GPUS"
    gres_conf+="NodeName=$NODE Name=gpu Type=$GPU_TYPE File=$STATE/fake-gpu[0-$((GPUS - 1))]"$'\n'
fi
if [ "$ACCOUNTING" = 1 ]; then
    acct_conf="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# GPUs show up in sacct AllocTRES, per type too (needs slurmdbd)
AccountingStorageTRES=gres/gpu,gres/gpu:$GPU_TYPE
# jobs must use an existing account (as on a real cluster)
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
else
    acct_conf="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

slurm_conf="$MARK
ClusterName=localci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
MailProg=/bin/true
# no cgroups in sandboxes/containers: plain process tracking, no task binding
# (srun then prints 'cluster configuration lacks support for cpu binding': harmless)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job that gives no --mem gets the whole node
DefMemPerCPU=512
# squeue keeps finished jobs this long; snakemake-executor-plugin-slurm only
# honours 'slurm-status-command: squeue' if MinJobAge >= 3x its
# slurm-init-seconds-before-status-checks (default 40 s)
MinJobAge=300
$acct_conf
JobCompType=jobcomp/none
GresTypes=gpu
# accept CPUs/memory that differ from the detected hardware
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB $gres_node ${FEATURES:+Features=$FEATURES} State=UNKNOWN
PartitionName=$CPU_PART Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=$GPU_PART Nodes=$NODE MaxTime=INFINITE State=UP
"
dbd_conf="$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
"

changed=0
write_conf() {   # write_conf FILE CONTENT MODE: refuse to clobber foreign configs
    local f=$1 content=$2 mode=$3
    if [ -e "$f" ] && ! head -1 "$f" | grep -qxF "$MARK"; then
        die "$f exists and was not written by this script; move it away first"
    fi
    if [ ! -e "$f" ] || [ "$(cat "$f")" != "$(printf '%s' "$content")" ]; then
        printf '%s\n' "$content" > "$f"; chmod "$mode" "$f"; changed=1
        log "wrote $f"
    fi
}
mkdir -p "$CONF_DIR"
write_conf "$CONF_DIR/slurm.conf" "$slurm_conf" 644
write_conf "$CONF_DIR/gres.conf" "$gres_conf" 644
[ "$ACCOUNTING" = 1 ] && write_conf "$CONF_DIR/slurmdbd.conf" "$dbd_conf" 600

if [ "$changed" = 1 ]; then   # config changed: restart the slurm daemons we run
    for d in slurmd slurmctld slurmdbd; do
        if pid_alive "$STATE/$d.pid" "$d"; then
            pid=$(cat "$STATE/$d.pid")
            log "config changed, stopping $d (pid $pid)"; kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 60); do [ -e "/proc/$pid" ] || break; sleep 0.25; done
        fi
    done
fi

# ---------------------------------------------------------------- 3. daemons
# munge: Debian's package creates /etc/munge/munge.key; create one if absent.
[ -s /etc/munge/munge.key ] || { mungekey --create --force; chown munge:munge /etc/munge/munge.key; }
if ! pid_alive /run/munge/munged.pid munged; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    mark_started munged
fi
wait_for 10 munged sh -c 'munge -n | unmunge'

if [ "$ACCOUNTING" = 1 ]; then
    if ! mariadb-admin ping >/dev/null 2>&1; then
        mkdir -p /run/mysqld && chown mysql:root /run/mysqld
        setsid /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
            --bind-address=127.0.0.1 >>"$LOGS/mariadb.log" 2>&1 < /dev/null &
        mark_started mariadbd
        wait_for 30 mariadb mariadb-admin ping
    fi
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    if ! pid_alive "$STATE/slurmdbd.pid" slurmdbd; then
        /usr/sbin/slurmdbd
        mark_started slurmdbd
    fi
    # sacctmgr only talks to slurmdbd once slurm.conf says accounting_storage/slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
    # register cluster, account, user before slurmctld needs them (all idempotent;
    # outputs are captured first: 'grep -q' in a pipe can SIGPIPE under pipefail)
    out=$(sacctmgr -n -P list cluster format=cluster)
    grep -qx localci <<<"$out" || sacctmgr -i add cluster localci >/dev/null
    out=$(sacctmgr -n -P list account format=account)
    grep -qx "$ACCOUNT" <<<"$out" \
        || sacctmgr -i add account "$ACCOUNT" Description=ci Organization=ci >/dev/null
    user=${SUDO_USER:-$(id -un)}
    out=$(sacctmgr -n -P list assoc user="$user" account="$ACCOUNT" format=user)
    grep -qx "$user" <<<"$out" \
        || sacctmgr -i add user "$user" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
fi

if ! pid_alive "$STATE/slurmctld.pid" slurmctld; then
    /usr/sbin/slurmctld
    mark_started slurmctld
fi
wait_for 20 slurmctld scontrol ping
if ! pid_alive "$STATE/slurmd.pid" slurmd; then
    /usr/sbin/slurmd -N "$NODE"
    mark_started slurmd
fi

# ---------------------------------------------------------------- 4. wait idle
end=$(( $(date +%s) + TIMEOUT )); resumed=0
while :; do
    st=$(sinfo -h -n "$NODE" -p "$CPU_PART" -o %t 2>/dev/null || true)
    case "$st" in
        idle|mix|alloc) break ;;
        drain*|drng|inval|down*)
            # a node drained by an earlier, different config: resume it once
            if [ "$resumed" = 0 ]; then
                log "node state '$st' ($(sinfo -h -n "$NODE" -o %E | head -1)); resuming"
                scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true
                resumed=1
            fi ;;
    esac
    [ "$(date +%s)" -lt "$end" ] || { sinfo -R >&2; die "node not idle after ${TIMEOUT}s (state '$st'), see $LOGS"; }
    sleep 0.5
done
if [ "$GPUS" -gt 0 ]; then   # Slurm silently drops a GRES it does not accept
    g=$(sinfo -h -n "$NODE" -o %G | head -1)
    [ "$g" = "gpu:$GPU_TYPE:$GPUS" ] || die "node GRES is '$g', expected gpu:$GPU_TYPE:$GPUS; see $LOGS/slurmd.log"
fi

sinfo -o '%P %a %D %t %c %m %G %f' >&2
log "cluster up after $(( $(date +%s) - T0 )) s: node $NODE, partitions $CPU_PART (default)" \
    "and $GPU_PART, $CPUS CPUs, ${MEM_MB} MB, $GPUS fake gpu:$GPU_TYPE, features '$FEATURES'," \
    "accounting=$ACCOUNTING$([ "$ACCOUNTING" = 1 ] && echo ", account $ACCOUNT")"
log "stop with: $(cd "$(dirname "$0")" && pwd)/stop-local-slurm.sh"
