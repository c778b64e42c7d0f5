# The supervisor of one GPU job: `/bin/sh -c <this> tern-gpu-supervisor PROGRAM ARGS...`, started by the agent
# in a process group of its own, in the job's directory $TERN_GPU_DIR, with TERN_GPU_JOB (that directory again:
# every process of the job carries it, so the agent recognises them), CUDA_VISIBLE_DEVICES and the task's
# environment. It runs the command, writes how it ended to "exit" ("exit CODE"), then ends every process of
# its group (whatever the command left behind holds no device after the job).
#
# Files in $TERN_GPU_DIR: pid, stdout.txt, stderr.txt, exit. The agent writes "killed" before killing the group.
dir="$TERN_GPU_DIR"
task_path_set="${PATH+set}"
task_path="${PATH-}"
PATH=/usr/local/bin:/usr/bin:/bin
export PATH
put() { printf '%s\n' "$2" >"$dir/$1.tmp" && mv "$dir/$1.tmp" "$dir/$1"; }
put pid "$$"
[ -e "$dir/killed" ] && exit 0
unset TERN_GPU_DIR
if [ "$task_path_set" = set ]; then PATH="$task_path"; else unset PATH; fi
"$@" >"$dir/stdout.txt" 2>"$dir/stderr.txt" </dev/null
code=$?
PATH=/usr/local/bin:/usr/bin:/bin
export PATH
put exit "exit $code"
kill -KILL 0
