"""The peer libraries' attacks (torchattacks, foolbox, advertorch, adversarial-robustness-toolbox) at our
parameters, each called the way its users call it, with the whole batch at once.

The adapters take our attack's validated parameters (`build_attack(...).params`), so a peer runs at exactly
the setting ours does; the benchmark and the cross-check tests share them. A peer library is imported only
when its adapter is called: a missing one fails there, and the benchmark reports it as a row.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from amc_dist.attacks import build_attack

# (model, x, y, params of our attack) -> adversarial batch
PeerAttack = Callable[[nn.Module, torch.Tensor, torch.Tensor, Any], torch.Tensor]


def import_advertorch() -> types.ModuleType:
    """advertorch 0.2.3 imports a helper that torch removed, and torchvision, at import time: stub both.

    The stubs exist only in the benchmark or test process that asks for advertorch.
    """
    gradcheck = importlib.import_module("torch.autograd.gradcheck")  # the module, not torch's function
    if not hasattr(gradcheck, "zero_gradients"):

        def zero_gradients(x: Any) -> None:
            if isinstance(x, torch.Tensor) and x.grad is not None:
                x.grad.detach_().zero_()

        gradcheck.zero_gradients = zero_gradients
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        # Only advertorch's JPEG defence uses these two transforms; the stubs fail if it ever is called.
        class _Unavailable:
            def __call__(self, *args: Any) -> Any:
                raise RuntimeError("torchvision is not installed (stubbed for advertorch)")

        transforms = types.ModuleType("torchvision.transforms")
        transforms.ToPILImage = transforms.ToTensor = _Unavailable
        stub = types.ModuleType("torchvision")
        stub.transforms = transforms
        sys.modules.update({"torchvision": stub, "torchvision.transforms": transforms})
    import advertorch.attacks

    return advertorch


def _foolbox() -> types.ModuleType:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython, which wants git
    import foolbox

    return foolbox


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return model(x[:1]).shape[1]


def _ta_fgsm(model, x, y, p):
    import torchattacks

    return torchattacks.FGSM(model, eps=p.eps)(x, y)


def _ta_pgd(model, x, y, p):
    import torchattacks

    return torchattacks.PGD(model, eps=p.eps, alpha=p.eps_iter, steps=p.nb_iter, random_start=p.rand_init)(
        x, y
    )


def _ta_ead(model, x, y, p):
    import torchattacks

    cls = torchattacks.EADEN if p.decision_rule == "EN" else torchattacks.EADL1
    attack = cls(
        model,
        kappa=p.confidence,
        lr=p.learning_rate,
        binary_search_steps=p.binary_search_steps,
        max_iterations=p.max_iterations,
        abort_early=p.abort_early,
        initial_const=p.initial_const,
        beta=p.beta,
    )
    return attack(x, y)


def _ta_apgd(model, x, y, p):
    import torchattacks

    norm = "Linf" if math.isinf(p.ord) else "L2"
    attack = torchattacks.APGD(
        model, norm=norm, eps=p.eps, steps=p.n_iter, n_restarts=p.n_restarts, seed=p.seed or 0, loss=p.loss
    )
    return attack(x, y)


def _fb_run(attack, model, x, y, p, epsilons):
    fb = _foolbox()
    return attack(fb.PyTorchModel(model, bounds=(p.clip_min, p.clip_max)), x, y, epsilons=epsilons)[1]


def _fb_fgsm(model, x, y, p):
    return _fb_run(_foolbox().attacks.LinfFastGradientAttack(random_start=False), model, x, y, p, p.eps)


def _fb_pgd(model, x, y, p):
    attack = _foolbox().attacks.LinfPGD(abs_stepsize=p.eps_iter, steps=p.nb_iter, random_start=p.rand_init)
    return _fb_run(attack, model, x, y, p, p.eps)


def _fb_vat(model, x, y, p):
    attack = _foolbox().attacks.VirtualAdversarialAttack(steps=p.num_iterations, xi=p.xi)
    return _fb_run(attack, model, x, y, p, p.eps)


def _fb_ead(model, x, y, p):
    attack = _foolbox().attacks.EADAttack(
        binary_search_steps=p.binary_search_steps,
        steps=p.max_iterations,
        initial_stepsize=p.learning_rate,
        confidence=p.confidence,
        initial_const=p.initial_const,
        regularization=p.beta,
        decision_rule=p.decision_rule,
        abort_early=p.abort_early,
    )
    adv = _fb_run(attack, model, x, y, p, None)
    # foolbox returns an all-zero image where EAD failed; count those as failures that return the input.
    failed = (adv.flatten(1) == 0).all(1) & (x.flatten(1) != 0).any(1)
    return torch.where(failed.view(-1, *[1] * (x.dim() - 1)), x, adv)


def _at_fgsm(model, x, y, p):
    attacks = import_advertorch().attacks
    return attacks.GradientSignAttack(model, eps=p.eps, clip_min=p.clip_min, clip_max=p.clip_max).perturb(
        x, y
    )


def _at_pgd(model, x, y, p):
    attack = import_advertorch().attacks.LinfPGDAttack(
        model,
        eps=p.eps,
        nb_iter=p.nb_iter,
        eps_iter=p.eps_iter,
        rand_init=p.rand_init,
        clip_min=p.clip_min,
        clip_max=p.clip_max,
    )
    return attack.perturb(x, y)


def _at_ead(model, x, y, p):
    attack = import_advertorch().attacks.ElasticNetL1Attack(
        model,
        _num_classes(model, x),
        confidence=p.confidence,
        learning_rate=p.learning_rate,
        binary_search_steps=p.binary_search_steps,
        max_iterations=p.max_iterations,
        abort_early=p.abort_early,
        initial_const=p.initial_const,
        clip_min=p.clip_min,
        clip_max=p.clip_max,
        beta=p.beta,
        decision_rule=p.decision_rule,
    )
    return attack.perturb(x, y)


def _art_run(make_attack, model, x, y, p):
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=_num_classes(model, x),
        clip_values=(p.clip_min, p.clip_max),
        device_type="gpu" if x.is_cuda else "cpu",
    )
    adv = make_attack(classifier).generate(x.cpu().numpy(), y=y.cpu().numpy())
    return torch.as_tensor(adv, dtype=x.dtype, device=x.device)


def _art_fgsm(model, x, y, p):
    from art.attacks.evasion import FastGradientMethod

    return _art_run(lambda c: FastGradientMethod(c, eps=p.eps, batch_size=len(x)), model, x, y, p)


def _art_pgd(model, x, y, p):
    from art.attacks.evasion import ProjectedGradientDescent

    def make(classifier):
        return ProjectedGradientDescent(
            classifier,
            norm=np.inf,
            eps=p.eps,
            eps_step=p.eps_iter,
            max_iter=p.nb_iter,
            num_random_init=int(p.rand_init),
            batch_size=len(x),
            verbose=False,
        )

    return _art_run(make, model, x, y, p)


def _art_ead(model, x, y, p):
    from art.attacks.evasion import ElasticNet

    def make(classifier):
        return ElasticNet(
            classifier,
            confidence=p.confidence,
            learning_rate=p.learning_rate,
            binary_search_steps=p.binary_search_steps,
            max_iter=p.max_iterations,
            beta=p.beta,
            initial_const=p.initial_const,
            batch_size=len(x),
            decision_rule=p.decision_rule,
            verbose=False,
        )

    return _art_run(make, model, x, y, p)


# ART's VirtualAdversarialMethod is a different algorithm (finite differences per pixel): no VAT peer there.
PEERS: dict[str, dict[str, PeerAttack]] = {
    "torchattacks": {"fgsm": _ta_fgsm, "pgd": _ta_pgd, "ead": _ta_ead, "apgd": _ta_apgd},
    "foolbox": {"fgsm": _fb_fgsm, "pgd": _fb_pgd, "vat": _fb_vat, "ead": _fb_ead},
    "advertorch": {"fgsm": _at_fgsm, "pgd": _at_pgd, "ead": _at_ead},
    "art": {"fgsm": _art_fgsm, "pgd": _art_pgd, "ead": _art_ead},
}


def peer_attack(
    library: str, attack: str, **params: Any
) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], Any]:
    """A peer's attack at our parameters (names and defaults as `build_attack`), called as f(model, x, y)."""
    adapter = PEERS[library][attack]
    p = build_attack(attack, **params).params
    return lambda model, x, y: adapter(model, x, y, p)
