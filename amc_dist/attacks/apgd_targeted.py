"""APGD-T (Croce & Hein 2020): APGD on the targeted DLR loss, one full run per target class.

-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2) is scale-free like DLR and aims at one class t at a time:
the classes ranked 2 to n_targets + 1 by the clean logits, each run only on the images no earlier run
has fooled. A success is any misclassification, not only the target. AutoAttack runs 9 targets under
Linf and L2 and 5 under L1 (with the L1 phases). The random start of restart r is the same for every
target, so memory holds n_restarts starts, not n_targets * n_restarts.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from amc_dist.attacks.apgd import APGD, APGDParams
from amc_dist.attacks.base import AttackParamError


class APGDTParams(APGDParams):
    loss: Literal["dlr"] = Field("dlr", description="always the targeted DLR loss")
    n_targets: int = Field(9, ge=1, description="target classes, ranked 2..n_targets+1 by the clean logits")


class APGDT(APGD):
    name = "apgd_t"
    Params = APGDTParams

    def _targets(self, logits: torch.Tensor) -> list[torch.Tensor | None]:
        classes = logits.shape[1]
        if classes < 4:
            raise AttackParamError(
                f"apgd_t: the targeted DLR loss needs at least 4 classes, the model has {classes}"
            )
        ranked = logits.argsort(1, descending=True)
        return [ranked[:, rank] for rank in range(1, min(self.params.n_targets, classes - 1) + 1)]
