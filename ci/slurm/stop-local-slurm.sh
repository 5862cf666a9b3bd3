#!/usr/bin/env bash
# (CI runs this script. --purge also removes the packages start-local-slurm.sh recorded as installed by it.)
# stop-local-slurm.sh -- stop the single-node Slurm cluster that
# start-local-slurm.sh started.
#
#   1. cancels all jobs still queued or running (scancel by job id) and waits
#      briefly for them to end, so no slurmstepd/job processes stay behind;
#   2. stops the daemons start-local-slurm.sh recorded as started by it
#      (slurmd, slurmctld, slurmdbd, mariadbd, munged), by the PIDs in their
#      pid files (never by process name), TERM then KILL after 15 s.
# Daemons it found already running (e.g. a system munged) are left alone.
# Installed packages are kept, so a later start takes only a few seconds; but
# while Slurm's clients are installed and no controller runs, every
# `snakemake` call on the machine waits ~10 s (its Slurm executor plugin asks
# `scontrol show config` when it loads), so leave no stopped cluster behind:
#
#   ./stop-local-slurm.sh           stop daemons, keep state/config/logs/packages
#   ./stop-local-slurm.sh --purge   also remove the packages start-local-slurm.sh
#                                   installed (apt-get purge), the state dir (job
#                                   queue, fake GPU device nodes) and the
#                                   /etc/slurm files it wrote (logs in
#                                   /var/log/slurm-local stay); packages that
#                                   were there before it are kept
# Uses the same SLURM_LOCAL_STATE_DIR as start-local-slurm.sh.
set -euo pipefail

STATE=${SLURM_LOCAL_STATE_DIR:-/var/spool/slurm-local}
STARTED="$STATE/started-by-start-local-slurm"
INSTALLED="$STATE/installed-by-start-local-slurm"
MARK="# managed by start-local-slurm.sh"
log() { echo "[stop-local-slurm] $*" >&2; }

pidfile_of() {
    case $1 in
        slurmd|slurmctld|slurmdbd) echo "$STATE/$1.pid" ;;
        mariadbd) echo /run/mysqld/mysqld.pid ;;
        munged) echo /run/munge/munged.pid ;;
    esac
}
# pid_of NAME: the pid in NAME's pid file if that process is alive and is NAME
pid_of() {
    local pf pid
    pf=$(pidfile_of "$1")
    [ -s "$pf" ] || return 1
    pid=$(cat "$pf")
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ] && echo "$pid"
}

stop_one() {   # stop_one NAME: TERM the pid in its pid file if it is NAME
    local name=$1 pid
    if ! pid=$(pid_of "$name"); then log "$name: not running"; return 0; fi
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do [ -e "/proc/$pid" ] || return 0; sleep 0.25; done
    log "$name did not exit, sending KILL"; kill -9 "$pid" 2>/dev/null || true
}

if [ -s "$STARTED" ]; then
    # 1. end the jobs while slurmctld and slurmd still run (slurmstepd and the
    #    job's processes are not children of slurmd and would outlive it)
    if grep -qx slurmctld "$STARTED" && pid_of slurmctld >/dev/null; then
        jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ' || true)
        if [ -n "${jobs// /}" ]; then
            log "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 1 40); do
                [ -z "$(squeue -h -t PD,R,CG,S -o %A 2>/dev/null)" ] && break
                sleep 0.25
            done
        fi
    fi
    # 2. daemons, newest first
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        if grep -qx "$name" "$STARTED"; then stop_one "$name"; fi
    done
    : > "$STARTED"
else
    log "nothing recorded in $STARTED; nothing to stop"
fi

# report (never kill by name) job step daemons that outlived slurmd
left=""
for c in /proc/[0-9]*/comm; do
    if [ "$(cat "$c" 2>/dev/null)" = slurmstepd ]; then p=${c#/proc/}; left+=" ${p%/comm}"; fi
done
if [ -n "$left" ]; then log "WARNING: slurmstepd still running, pids:$left"; fi

if [ "${1:-}" = --purge ]; then
    if [ -s "$INSTALLED" ]; then   # those of them still installed
        mapfile -t packages < <(xargs dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' < "$INSTALLED" \
                                2>/dev/null | awk '$1 == "ii" {print $2}')
        if [ ${#packages[@]} -gt 0 ]; then
            log "removing the packages start-local-slurm.sh installed: ${packages[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${packages[@]}" >/dev/null
        fi
    fi
    for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf; do
        if [ -e "$f" ] && head -1 "$f" | grep -qxF "$MARK"; then rm -f "$f"; log "removed $f"; fi
    done
    rm -rf "$STATE" && log "removed $STATE"
fi
exit 0
