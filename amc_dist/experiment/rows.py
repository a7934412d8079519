"""The paper's table rows and the checkpoints that hold their models."""

from __future__ import annotations

from amc_dist.config import Config


def model_rows(config: Config) -> dict[str, str]:
    """Table row -> the checkpoint holding that model."""
    order, variants = config.cascade.order, config.experiment.variants
    rows = {"undefended": "target"}
    if config.experiment.baselines:
        rows |= {f"at_{a}": f"at.{a}" for a in order} | {f"at_proxy_{a}": f"at_proxy.{a}" for a in order}
    if "target_hardened" in variants:
        rows["amc_target"] = f"amc_target.{len(order)}"
    if "local_proxy" in variants:
        rows["amc_proxy"] = f"amc_proxy.{len(order)}"
    if "no_transfer" in variants:
        rows["amc_no_transfer"] = "amc_no_transfer"
    if "leave_one_out" in variants:
        rows["amc_loo"] = f"amc_loo.{len(order) - 1}"
    return rows


def blackbox_rows(config: Config) -> list[str]:
    """Rows evaluated against the adaptive black-box attacker (Table 4)."""
    rows = model_rows(config)
    return [r for r in rows if r == "undefended" or r.startswith("at_proxy_") or r == "amc_proxy"]


def union_rows(config: Config) -> dict[str, str]:
    """Union row -> the checkpoint holding its model (an amc_union row's: its last stage)."""
    s = config.strategies
    return {
        row.name: f"union.{row.name}" + (f".{len(s.attacks_of(row))}" if row.strategy == "amc_union" else "")
        for row in s.rows
    }
