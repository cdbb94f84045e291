"""OpenMP wait policies on this machine: the suite's DARTS step under each, idle or loaded.

Each policy runs in its own process (libgomp reads the policy once, when it loads), the
policies in turn (round 1: every policy, round 2: every policy, ...), so a drift of the
machine's speed touches them all. A process times ``--steps`` first-order DARTS steps
(C=8, 5 cells, 16x16x3, batch 64, restricted space, ``--threads`` threads) after 2
warm-ups and prints its median. ``--burners N`` starts N CPU-bound single-thread processes
for the whole measurement (the busy machine); measure the idle case on an idle machine.
The results are what :mod:`nasbench_suite.threads` documents; nothing is asserted.

    python tests/benchmarks/wait_policy.py --rounds 4 --steps 6
    python tests/benchmarks/wait_policy.py --rounds 3 --steps 5 --burners 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

#: label -> the environment that gives libgomp that policy (GOMP_SPINCOUNT wins over the
#: policy's own spin count; 300,000 is libgomp's documented default)
POLICIES = {"passive": {"OMP_WAIT_POLICY": "PASSIVE"},
            "spin-10k": {"GOMP_SPINCOUNT": "10000"},
            "spin-30k": {"GOMP_SPINCOUNT": "30000"},
            "default": {"GOMP_SPINCOUNT": "300000"}}

_CHILD = """
import statistics, sys, time
import torch
import nasbench_suite.spaces as spaces
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.methods.darts import Darts, DartsConfig
from nasbench_suite.spaces import NetShape
torch.set_num_threads({threads})
torch.manual_seed(0)
shape = NetShape(8, 5, 3, 10, 16)
g = torch.Generator().manual_seed(0)
batches = [(torch.randn(64, 3, 16, 16, generator=g), torch.randint(0, 10, (64,), generator=g))
           for _ in range(2)]
space = spaces.create_space("restricted", shape)
cfg = DartsConfig()
net = space.supernet(auxiliary=Darts.uses_auxiliary(cfg))
method = Darts(space, net, cfg, SearchContext(device=torch.device("cpu"), epochs=1,
                                              steps_per_epoch=1, seed=0))
for _ in range(2):
    method.step(*batches)
times = []
for _ in range({steps}):
    t = time.perf_counter(); method.step(*batches); times.append(time.perf_counter() - t)
print(statistics.median(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--burners", type=int, default=0)
    parser.add_argument("--policies", default=",".join(POLICIES))
    args = parser.parse_args()
    chosen = args.policies.split(",")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(args.burners)]
    results: dict[str, list[float]] = {name: [] for name in chosen}
    try:
        for _ in range(args.rounds):
            for name in chosen:
                env = {k: v for k, v in os.environ.items()
                       if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
                env.update(POLICIES[name])
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD.format(threads=args.threads, steps=args.steps)],
                    env=env, capture_output=True, text=True, check=True)
                results[name].append(float(out.stdout.split()[-1]))
    finally:
        for proc in burners:
            proc.kill()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {args.threads} threads, {args.burners} burners, "
          f"load {os.getloadavg()[0]:.2f}")
    for name, values in results.items():
        print(f"{name:10s} median {statistics.median(values):.3f} s  "
              f"({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
