"""`amc bench attacks` / `python -m amc_dist.bench.attacks`: our attacks against the peer libraries.

Everything runs side by side in one process, on the same model, inputs and labels (the model's own
predictions, as the paper's authors attacked): LeNet on real MNIST test images at the paper's MNIST
settings, ResNet-32 on CIFAR-shaped inputs at its CIFAR-10 settings, a standard strong PGD on both, and
APGD-CE on LeNet.
Each row gives examples/s (best of `repeats` timed calls, after an untimed warm-up), the success rate,
mean L1/L2/Linf distortion of the successful examples, outputs outside the box, and the forward passes
per example with and without gradient (counted by wrapping the model). Our rows also give the speed-up
over the fastest peer and the efficiency against the limit: the model's best input-gradient
forward+backward throughput over chunk sizes, divided by our gradient passes per example.

The peers (torchattacks, foolbox, advertorch, adversarial-robustness-toolbox) are optional: a library that
is missing, or fails at a setting, shows as a row with its error. Each peer is called the way its users
call it, with the whole batch at once (`peers`), and glibc's malloc is kept warm for everyone
(`timing.warm_allocator`). The cases are in `cases`, the table in `table`; this module runs them.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from amc_dist.bench.cases import cases, run_case, workloads
from amc_dist.bench.distortion import distortion_stats
from amc_dist.bench.peers import PEERS, import_advertorch, peer_attack
from amc_dist.bench.table import markdown_table, print_table
from amc_dist.bench.timing import gradient_throughput, pick_threads, warm_allocator
from amc_dist.models import build_model

# The cross-check and squeezing tests and docs/benchmarks.md import these from here.
__all__ = ["distortion_stats", "import_advertorch", "main", "peer_attack", "run_benchmark"]


def run_benchmark(
    quick: bool = False,
    out: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    libraries: list[str] | None = None,
    print_results: bool = True,
    markdown: str | None = None,
) -> dict:
    """Run every case, print the table, write the JSON report to `out` (and the table as Markdown to
    `markdown`) if given, and return the report."""
    warm = warm_allocator()
    torch_device = torch.device(device)
    libraries = list(PEERS) if libraries is None else libraries
    if threads:
        torch.set_num_threads(threads)
    elif torch_device.type == "cpu":  # before training the LeNet, which then runs at the chosen count too
        pick_threads(build_model("lenet").eval(), torch.rand(200, 1, 28, 28))
    models = workloads(quick, torch_device)
    limits = {
        name: gradient_throughput(model, x, rounds=3 if quick else 6) for name, (model, x) in models.items()
    }
    rows = []
    for case in cases(quick):
        model, x = models[case.model]
        rows += run_case(case, model, x, max(limits[case.model].values()), libraries)
    report = {
        "command": "python -m amc_dist.bench.attacks" + (" --quick" if quick else ""),
        "device": str(torch_device)
        if torch_device.type == "cpu"
        else torch.cuda.get_device_name(torch_device),
        "threads": torch.get_num_threads(),
        "allocator": "warm" if warm else "as found (no glibc)",
        "torch": torch.__version__,
        "quick": quick,
        "limits": {name: {"best": max(r.values()), "by_chunk_size": r} for name, r in limits.items()},
        "rows": rows,
    }
    if print_results:
        print_table(report)
    if out:
        with open(out, "w") as handle:
            json.dump(report, handle, indent=1)
    if markdown:
        with open(markdown, "w") as handle:
            handle.write(markdown_table(report))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amc bench attacks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer images and repeats (under 5 minutes on 2 CPUs)"
    )
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--markdown", help="write the table as Markdown here")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: the fastest for LeNet gradients)",
    )
    parser.add_argument(
        "--peers", nargs="*", choices=list(PEERS), help="peer libraries to run (default: all)"
    )
    args = parser.parse_args(argv)
    run_benchmark(args.quick, args.out, args.device, args.threads, args.peers, markdown=args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
