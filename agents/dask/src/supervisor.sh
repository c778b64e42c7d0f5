# The supervisor of one Dask job: `/bin/sh -c <this> tern-dask-supervisor PROGRAM ARGS...`, started by the
# agent in a process group of its own, in the job's directory $TERN_DASK_DIR, with TERN_DASK_JOB (that directory
# again: every process of the job carries it, so the agent recognises them) and the task's environment.
#
# It starts the local cluster when TERN_DASK_MODE=local (a scheduler on a free 127.0.0.1 port, then
# TERN_DASK_NWORKERS workers, waiting for them to register), runs the task's command with
# DASK_SCHEDULER_ADDRESS set, writes how it ended to "exit" ("exit CODE", or "cluster REASON"), then ends
# every process of its group (the cluster, and whatever the command left behind).
#
# Files in $TERN_DASK_DIR: pid, phase (starting_cluster | running), scheduler.json, scheduler.log,
# worker.log, cluster.log, stdout.txt, stderr.txt, exit. The agent writes "killed" before killing the group.
dir="$TERN_DASK_DIR"
mode="$TERN_DASK_MODE"
# The supervisor's own tools (mv, sleep, tail) come from the system, whatever PATH the task was given.
task_path_set="${PATH+set}"
task_path="${PATH-}"
PATH=/usr/local/bin:/usr/bin:/bin
export PATH
put() { printf '%s\n' "$2" >"$dir/$1.tmp" && mv "$dir/$1.tmp" "$dir/$1"; }
# Ends the whole process group, this shell included; the cluster gets a moment to shut down cleanly.
teardown() {
    if [ "$mode" = local ]; then
        trap '' TERM
        kill -TERM 0 2>/dev/null
        sleep 2
    fi
    kill -KILL 0
}
cluster_failed() {
    put exit "cluster $1"
    teardown
}
put pid "$$"
[ -e "$dir/killed" ] && exit 0
unset TERN_DASK_DIR

if [ "$mode" = local ]; then
    py="$TERN_DASK_PYTHON"
    put phase starting_cluster
    ("$py" -m distributed.cli.dask_scheduler --host 127.0.0.1 --port 0 --dashboard-address 127.0.0.1:0 \
        --scheduler-file "$dir/scheduler.json" >"$dir/scheduler.log" 2>&1 </dev/null
     echo "$?" >"$dir/scheduler.exit") &
    ticks=$((TERN_DASK_START_TIMEOUT * 10))
    while [ ! -s "$dir/scheduler.json" ]; do
        [ -e "$dir/scheduler.exit" ] && cluster_failed "the scheduler exited with code $(cat "$dir/scheduler.exit") before serving"
        ticks=$((ticks - 1))
        [ "$ticks" -le 0 ] && cluster_failed "the scheduler did not start within ${TERN_DASK_START_TIMEOUT}s"
        sleep 0.1
    done
    ("$py" -m distributed.cli.dask_worker --scheduler-file "$dir/scheduler.json" --host 127.0.0.1 \
        --nworkers "$TERN_DASK_NWORKERS" --nthreads "$TERN_DASK_NTHREADS" --memory-limit "$TERN_DASK_MEMORY" \
        --dashboard-address 127.0.0.1:0 --local-directory "$dir/dask-worker-space" >"$dir/worker.log" 2>&1 </dev/null
     echo "$?" >"$dir/worker.exit") &
    "$py" - "$dir" "$TERN_DASK_NWORKERS" "$TERN_DASK_START_TIMEOUT" >"$dir/address" 2>"$dir/cluster.log" <<'PY'
import os, sys, time
from distributed import Client

d, n, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + limit
with Client(scheduler_file=os.path.join(d, "scheduler.json"), timeout=limit) as client:
    while True:
        try:
            client.wait_for_workers(n, timeout=1)
            break
        except Exception:
            pass
        for part in ("scheduler", "worker"):
            if os.path.exists(os.path.join(d, part + ".exit")):
                sys.exit(f"the {part} process exited before {n} worker(s) registered")
        if time.monotonic() > deadline:
            sys.exit(f"{n} worker(s) did not register within {limit:g}s")
    print(client.scheduler.address)
PY
    [ "$?" -eq 0 ] || cluster_failed "$(tail -n 1 "$dir/cluster.log")"
    DASK_SCHEDULER_ADDRESS="$(cat "$dir/address")"
    export DASK_SCHEDULER_ADDRESS
fi
unset TERN_DASK_MODE TERN_DASK_PYTHON TERN_DASK_NWORKERS TERN_DASK_NTHREADS TERN_DASK_MEMORY TERN_DASK_START_TIMEOUT
[ -e "$dir/killed" ] && teardown
put phase running
if [ "$task_path_set" = set ]; then PATH="$task_path"; else unset PATH; fi
"$@" >"$dir/stdout.txt" 2>"$dir/stderr.txt" </dev/null
code=$?
PATH=/usr/local/bin:/usr/bin:/bin
export PATH
put exit "exit $code"
teardown
