"""flytekit's local execution of the engine benchmark's DAG (core-engine/benches/engine, docs/benchmarks.md).

The same shape as the Tern side: LAYERS = NODES / (WIDTH + 1) layers; each layer has WIDTH no-op
nodes reading the previous layer's join output (the workflow input for the first layer) and one
join node that reads the first of them and runs after all of them (`>>`); the workflow output is
the last join's output. Every node is the same no-op task `noop(x: int) -> int`.

Workflow construction (the @workflow decorator compiling the function) and execution (calling
it: flytekit's local execution) are timed separately. Prints one JSON line.

    python tests/interop/bench/flytekit_dag.py --nodes 1000 --width 9
"""
import argparse
import json
import resource
import sys
import time

import flytekit
from flytekit import task, workflow


@task
def noop(x: int) -> int:
    return x


def build(layers: int, width: int):
    def dag(x: int) -> int:
        prev = x
        for _ in range(layers):
            layer = [noop(x=prev) for _ in range(width)]
            join = noop(x=layer[0])
            for other in layer[1:]:
                other >> join
            prev = join
        return prev

    return workflow(dag)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--width", type=int, default=9)
    a = p.parse_args()
    if a.width < 1 or a.nodes % (a.width + 1) != 0:
        print(f"--nodes must be a multiple of width + 1 = {a.width + 1}", file=sys.stderr)
        return 2
    layers = a.nodes // (a.width + 1)
    # Deep DAGs recurse in flytekit's compiler: give it room.
    sys.setrecursionlimit(max(10_000, a.nodes * 4))
    t0 = time.perf_counter()
    wf = build(layers, a.width)
    wf.compile()  # compiled lazily otherwise, on the first call: keep it out of the execution time
    t1 = time.perf_counter()
    out = wf(x=7)
    t2 = time.perf_counter()
    if out != 7:
        print(f"unexpected output {out!r}", file=sys.stderr)
        return 1
    exec_s = t2 - t1
    print(
        json.dumps(
            {
                "side": "flytekit",
                "flytekit": flytekit.__version__,
                "nodes": a.nodes,
                "width": a.width,
                "layers": layers,
                "construct_s": t1 - t0,
                "run_s": exec_s,
                "us_per_node": exec_s / a.nodes * 1e6,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
