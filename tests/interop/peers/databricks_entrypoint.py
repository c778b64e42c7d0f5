"""Tern's test stand-in for flytekit's Databricks entrypoint (`flytekitplugins/databricks/entrypoint.py` in
flyteorg/flytetools, which a Databricks cluster fetches from Git).

The tests import this file into minilake's workspace (`/Shared/tern/entrypoint.py`) and point the agent's
`python_file` at it. Like the real one, it runs the rendered container args it receives as parameters
(`pyflyte-execute --inputs ... --output-prefix ... -- task-module M task-name T`) in this Python process, so the
task's own code reads inputs.pb and writes outputs.pb.
"""

import sys


def main(argv):
    from flytekit.bin.entrypoint import execute_task_cmd, fast_execute_task_cmd

    commands = {"pyflyte-execute": execute_task_cmd, "pyflyte-fast-execute": fast_execute_task_cmd}
    if not argv or argv[0] not in commands:
        print(f"expected one of {sorted(commands)} as the first parameter, got {argv[:1]}", file=sys.stderr)
        return 2
    command = commands[argv[0]]
    command.main(argv[1:], prog_name=argv[0])  # exits with the task's status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
