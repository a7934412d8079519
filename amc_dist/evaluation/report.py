"""Everything about ONE model, as a robustness report: what backs `amc evaluate --checkpoint FILE`.

Clean error; white-box error under the config's four attacks at Table 1 parameters; under the standard
strong PGD, APGD-CE and APGD-DLR and their worst case (bare, through the squeezer, and through it with
BPDA); the Table 5 squeezing table; the
gradient-masking smell tests of the model and of the squeezed model attacked through BPDA (their transfer
check only when a proxy is given); and black-box transfer from that proxy. `single_model_results` turns the
answer into `results.json` content, so `tables.render_markdown` prints it like the paper's tables.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from amc_dist import storage
from amc_dist.attacks import build_attacks
from amc_dist.config import Config
from amc_dist.evaluation.clean import error_rate
from amc_dist.evaluation.heatmaps import write_heatmaps
from amc_dist.evaluation.results import build_results
from amc_dist.evaluation.robustness import Labels, attack_errors
from amc_dist.evaluation.smell import SMELL_SIZE, smell_rows
from amc_dist.evaluation.squeezing import TABLE5_ATTACKS, describe_squeezer, squeezer_for, squeezing_table
from amc_dist.evaluation.tables import render_markdown
from amc_dist.evaluation.worst_case import strong_event, worst_case_errors, worst_case_params
from amc_dist.events import EventSink, event, ignore


def _devices(model: nn.Module) -> list[int]:
    """CUDA devices whose random state `fork_rng` must save: the model's, if it lives on one."""
    param = next(iter(model.parameters()), None)
    if param is None or param.device.type != "cuda":
        return []
    return [param.device.index if param.device.index is not None else torch.cuda.current_device()]


@contextlib.contextmanager
def seeded(model: nn.Module, seed: int) -> Iterator[None]:
    """Random numbers seeded with `seed` inside; the caller's random state (CPU, the model's GPU) is kept."""
    with torch.random.fork_rng(devices=_devices(model)):
        torch.manual_seed(seed)
        yield


def evaluate_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: Config,
    *,
    proxy: nn.Module | None = None,
    on_event: EventSink | None = None,
    name: str = "model",
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    labels: Labels = "predicted",
    smell_size: int = SMELL_SIZE,
    seed: int | None = None,
    stage: str = "evaluate",
    blackbox: bool = True,
) -> dict[str, Any]:
    """The robustness report of one model on images `x` (uint8 or [0, 1] float) with true labels `y`.

    Returns {"name", "clean", "whitebox": {attack: error}, "strong_pgd": {row: error}, "worst_case":
    {row: {attack: error, "worst_case": error}} (strong PGD, APGD-CE, APGD-DLR and their per-image union),
    "squeezing": {row: {column: error}}, "smell_tests": {row: {...}}, "blackbox": {attack: error} (only with
    a `proxy`), "meta"}, error rates as fractions. Rows of the squeezing and worst-case parts are `name`,
    `name+fs`, `name+fs_bpda`; the smell tests' rows are `name` and `name+fs_bpda` (the squeezed model,
    attacked through BPDA).
    - clean error on `test` (images, labels) if given (Table 2's held-out split), else on `x`;
    - the Table 1 attacks (`config.attacks.whitebox`) aim at the model's own predictions unless
      `labels="true"` (the paper's authors passed no labels); the strong attacks (strong PGD, APGD) and
      the smell tests use the true labels. Table 3's EAP and PGM numbers are Table 5's bare-model normal
      column: one run serves both;
    - the smell tests run on `smell_size` images drawn at random (an eps sweep is costly);
    - `proxy`: the smell tests' transfer check, and (`blackbox`) black-box transfer errors under
      `config.attacks.blackbox`, crafted on the proxy (Table 4);
    - `on_event` receives eval events {"kind": "eval", "stage", "step", "setting", "attack", "error_rate",
      "n", "model"} as each number is known; settings: clean, whitebox, squeezed, bpda, strong_pgd, apgd,
      worst_case, blackbox, smell.
    Random starts are seeded (`seed`, default `config.seed`) without touching the caller's random state.
    """
    emit = on_event or ignore
    counter = iter(range(1_000_000))

    def report(setting: str, attack: str | None, error: float, n: int, **extra: Any) -> None:
        emit(
            event(
                "eval",
                stage,
                next(counter),
                setting=setting,
                attack=attack,
                error_rate=error,
                n=n,
                model=name,
                **extra,
            )
        )

    def row_setting(row: str) -> str:
        return {f"{name}+fs": "squeezed", f"{name}+fs_bpda": "bpda"}.get(row, "whitebox")

    attacks_cfg = config.attacks
    missing = [a for a in TABLE5_ATTACKS if a not in attacks_cfg.whitebox]
    table5 = [a for a in TABLE5_ATTACKS if a in attacks_cfg.whitebox]
    squeezer = squeezer_for(config.squeeze)
    n = len(x)
    m = min(smell_size, n)
    with seeded(model, config.seed if seed is None else seed):
        x_clean, y_clean = test if test is not None else (x, y)
        clean = error_rate(model, x_clean, y_clean)
        report("clean", None, clean, len(x_clean))

        squeezing = squeezing_table(
            model,
            x,
            y,
            attacks_cfg.whitebox,
            squeezer,
            name=name,
            attacks=table5,
            labels=labels,
            on_result=lambda row, attack, e: report(row_setting(row), attack, e, n),
        )
        others = build_attacks({a: p for a, p in attacks_cfg.whitebox.items() if a not in table5})
        whitebox = attack_errors(
            model, x, y, others, labels=labels, on_result=lambda attack, e: report("whitebox", attack, e, n)
        )
        whitebox.update({a: squeezing[name][a] for a in table5})
        whitebox = {a: whitebox[a] for a in attacks_cfg.whitebox}  # the config's order

        worst = worst_case_errors(
            model,
            x,
            y,
            attacks_cfg,
            name=name,
            squeeze=squeezer,
            on_result=lambda row, attack, e: report(*strong_event(attack), e, n, row=row),
        )
        strong_pgd = {row: errors["pgd_strong"] for row, errors in worst.items()}

        result: dict[str, Any] = {"name": name, "clean": clean, "whitebox": whitebox}
        if proxy is not None and blackbox:
            blackbox_attacks = build_attacks(attacks_cfg.blackbox)
            result["blackbox"] = attack_errors(
                model,
                x,
                y,
                blackbox_attacks,
                source=proxy,
                labels=labels,
                on_result=lambda attack, e: report("blackbox", attack, e, n),
            )

        smell = smell_rows(
            model,
            x,
            y,
            pgd=attacks_cfg.strong_pgd,
            name=name,
            proxy=proxy,
            squeezer=squeezer,
            size=smell_size,
            on_result=lambda row, check, e, passed: report("smell", check, e, m, row=row, passed=passed),
        )

    result.update(strong_pgd=strong_pgd, worst_case=worst, squeezing=squeezing, smell_tests=smell)
    blackboxed = "blackbox" in result
    result["meta"] = {
        "n": n,
        "clean_n": len(x_clean),
        "clean_split": "test split" if test is not None else "the evaluated images; no test split given",
        "attack_labels": {
            "table1": labels,
            "strong_pgd": "true",
            "worst_case": "true",
            "smell_tests": "true",
        },
        "whitebox": {a: p.headline() for a, p in attacks_cfg.whitebox.items()},
        "blackbox": {a: p.headline() for a, p in attacks_cfg.blackbox.items()} if blackboxed else None,
        "strong_pgd": attacks_cfg.strong_pgd.headline(),
        "worst_case": worst_case_params(attacks_cfg),
        "squeezer": describe_squeezer(squeezer),
        "table5_missing": missing,
        "smell_n": m,
        "seed": config.seed if seed is None else seed,
    }
    return result


def single_model_results(dataset: str, evaluation: dict[str, Any]) -> dict[str, Any]:
    """`results.json` content for one `evaluate_model` answer, ready for `tables.render_markdown`."""
    name = evaluation["name"]
    blackbox = evaluation.get("blackbox")
    return build_results(
        dataset,
        clean={name: evaluation["clean"]},
        whitebox={name: evaluation["whitebox"]},
        blackbox={name: blackbox} if blackbox is not None else None,
        squeezing=evaluation["squeezing"],
        strong_pgd=evaluation["strong_pgd"],
        worst_case=evaluation["worst_case"],
        smell_tests=evaluation["smell_tests"],
        meta=evaluation.get("meta"),
    )


def write_report(results: dict[str, Any], directory: str) -> list[str]:
    """Write `results.json`, `results.md` and the heatmaps under `directory` (local path or fsspec URL),
    each atomically; return what was written."""
    written = []
    for name, data in (
        ("results.json", json.dumps(results, indent=2, sort_keys=True).encode()),
        ("results.md", render_markdown(results).encode()),
    ):
        url = storage.join(directory, name)
        with storage.atomic_write(url) as handle:
            handle.write(data)
        written.append(url)
    return written + write_heatmaps(results, storage.join(directory, "figures"))
