# shellcheck shell=bash disable=SC2034
# Shared settings for slurm/up, slurm/down and slurm/status (sourced, not run).
# Everything lives in one state directory so that `down` + `rm -rf` resets it all.

SLURM_DIR=${LAUNCHER_SLURM_DIR:-/var/lib/launcher-slurm}
CLUSTER=launcher
NODES=(n1 n2)
export SLURM_CONF=$SLURM_DIR/slurm.conf
# slurmdbd finds slurmdbd.conf next to $SLURM_CONF.
DBD_CONF=$SLURM_DIR/slurmdbd.conf
RUN=$SLURM_DIR/run
LOG=$SLURM_DIR/log
# Private MariaDB for slurmdbd; a socket under /tmp was refused, /run/mysqld works.
DB_SOCKET=/run/mysqld/launcher-slurm.sock
DB_PORT=3307

# Every daemon a healthy cluster needs, in start order.
DAEMONS=(munged mariadb slurmdbd slurmctld "${NODES[@]/#/slurmd-}")

pid_file() {
    case $1 in
        # munged's default place also finds a munged started by the OS.
        munged) echo /run/munge/munged.pid ;;
        *) echo "$RUN/$1.pid" ;;
    esac
}

pid_of() {  # prints the pid of a daemon if it is alive
    local f pid comm=${1%%-*}
    [ "$comm" = mariadb ] && comm=mariadbd
    f=$(pid_file "$1")
    [ -s "$f" ] || return 1
    pid=$(<"$f")
    # /proc rather than `kill -0`: works for non-root users too; the name check
    # guards against a stale pid file whose pid was reused.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && echo "$pid"
}

# True when every daemon is alive, both nodes accept jobs and accounting answers.
# Pid files are checked first so that a stopped cluster is detected instantly
# (SLURM clients retry for many seconds against a dead controller).
healthy() {
    local d states
    for d in "${DAEMONS[@]}"; do pid_of "$d" >/dev/null || return 1; done
    states=$(timeout 10 sinfo -h -N -p debug -o '%t' 2>/dev/null) || return 1
    # Exact states only: a suffix (idle*, drain, down~...) means not usable.
    [ "$(grep -cE '^(idle|mix|alloc|comp|plnd)$' <<<"$states")" -eq "${#NODES[@]}" ] || return 1
    timeout 10 sacct -n -X -S now-1minutes -o JobID >/dev/null 2>&1
}
