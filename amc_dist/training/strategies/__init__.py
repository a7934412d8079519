"""Union-robust training strategies, each a `Perturber` over named training attacks (one per threat model),
all on true labels: `avg` and `max` (Tramer & Boneh 2019), `msd` (Maini et al. 2020), `eat` (Croce & Hein
2022) and `amc_union`, the paper's cascade with the threat models as its stages (`cascade.py` drives it)."""

from __future__ import annotations

from amc_dist.training.strategies.amc_union import AmcUnion
from amc_dist.training.strategies.avg import Avg
from amc_dist.training.strategies.eat import EAT
from amc_dist.training.strategies.max import Max
from amc_dist.training.strategies.msd import MSD
from amc_dist.training.strategies.strategy import Strategy

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (Avg, Max, MSD, EAT, AmcUnion)}

__all__ = ["EAT", "MSD", "STRATEGIES", "AmcUnion", "Avg", "Max", "Strategy"]
