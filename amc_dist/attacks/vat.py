"""The virtual adversarial perturbation (Miyato et al. 2016; the paper's "VAP"), as Cleverhans computes it.

Power iteration on the KL divergence between the clean and the perturbed prediction finds the direction
the model's output is most sensitive to; the result is an L2 step of size eps along it. It needs no
labels: y is ignored, so the attack is the same whatever labels a caller passes.

Where a sample's KL gradient vanishes (a flat model, or a probe xi below float resolution, as can happen
at the paper's xi=1e-6), Cleverhans' direction became zero and the sample came back unchanged: that is
the default, `vanishing_gradient="return_input"`. `"keep_direction"` keeps the previous probe direction
(the random start if it vanishes at once), so such a sample still moves eps: a stronger attack than the
paper's.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from amc_dist.attacks.base import Attack, RandomParams, l2_norm, l2_normalize, per_sample, random_like


class VATParams(RandomParams):
    # Defaults: what the paper's authors ran on SVHN/CIFAR-10 (MNIST: xi=1.0, num_iterations=6, eps=5.0).
    eps: float = Field(2.0, ge=0, description="L2 length of the perturbation")
    xi: float = Field(1e-6, gt=0, description="L2 length of the probe of each power iteration")
    num_iterations: int = Field(1, ge=1, description="power iterations")
    vanishing_gradient: Literal["return_input", "keep_direction"] = Field(
        "return_input",
        description="a sample whose KL gradient vanishes: 'return_input' returns it unchanged, as Cleverhans "
        "(the authors' code); 'keep_direction' steps along the last direction that had one (stronger)",
    )


class VAT(Attack):
    name = "vat"
    Params = VATParams
    uses_labels = False

    def _noise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return random_like(x, generator, normal=True)

    def _perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, noise: torch.Tensor | None
    ) -> torch.Tensor:
        p = self.params
        with torch.no_grad():
            log_p = F.log_softmax(model(x), dim=1)  # the clean prediction is a constant target
        prob = log_p.exp()
        d = noise
        for _ in range(p.num_iterations):
            probe = (p.xi * l2_normalize(d)).requires_grad_(True)
            log_q = F.log_softmax(model(x + probe), dim=1)
            kl = (prob * (log_p - log_q)).sum()
            (grad,) = torch.autograd.grad(kl, probe)
            if p.vanishing_gradient == "keep_direction":
                d = torch.where(per_sample(l2_norm(grad) > 0, grad), grad, probe.detach())
            else:
                # A vanished direction stays zero: at a zero probe the KL is at its minimum, so its exact
                # gradient is zero (what is computed there is rounding noise). A zero row stays zero
                # through l2_normalize, so the sample returns as it came.
                d = torch.where(per_sample(l2_norm(d) > 0, grad), grad, 0.0)
        return self._clip(x + p.eps * l2_normalize(d))
