"""The attack API and the guarantees every attack shares, on a tiny untrained model (fast).

The implementation checklist: eval mode during generation and restored after, no parameter gradients
left behind, detached outputs, no aliasing of the input, clipping, clear errors, seeded determinism.
"""

from __future__ import annotations

import math
import time
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from amc_dist.attacks import (
    ATTACK_NAMES,
    PAPER_NAMES,
    AttackParamError,
    attack_for,
    build_attack,
    build_attacks,
    canonical_name,
    params_class,
)

# Small budgets keep every attack fast; the PGD settings reach their eps-ball (no warning).
QUICK = {
    "fgsm": {"eps": 0.1},
    "pgd": {"eps": 0.1, "eps_iter": 0.02, "nb_iter": 6, "seed": 0},
    "vat": {"eps": 1.0, "xi": 1e-3, "num_iterations": 2, "seed": 0},
    "ead": {"binary_search_steps": 3, "max_iterations": 12, "initial_const": 1.0, "abort_early": True},
    "apgd": {"eps": 0.1, "n_iter": 6, "seed": 0},
    "apgd_t": {"eps": 0.1, "n_iter": 4, "n_targets": 2, "seed": 0},
    "square": {"eps": 0.1, "n_queries": 20, "seed": 0},
}


def tiny_model(seed: int = 0) -> nn.Module:
    """Conv + BatchNorm + Dropout: a model whose mode matters (BN statistics, dropout masks)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10),
    )


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_names_aliases_and_canonical_names():
    assert ATTACK_NAMES == ("fgsm", "pgd", "vat", "ead", "apgd", "apgd_t", "square")
    for name, paper in PAPER_NAMES.items():
        assert canonical_name(paper) == name
        assert canonical_name(paper.lower()) == name
        assert canonical_name(name.upper()) == name
        assert type(build_attack(paper, **QUICK[name])) is type(build_attack(name, **QUICK[name]))
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        build_attack("cw")


def test_a_config_section_builds_through_the_same_entry_point():
    section = {"PGM": QUICK["pgd"], "fgsm": {"eps": 0.2}, "EAP": QUICK["ead"]}
    built = build_attacks(section)
    assert list(built) == ["pgd", "fgsm", "ead"]  # our names, in the section's order
    assert built["fgsm"].params.eps == 0.2 and built["pgd"].params.nb_iter == 6
    assert list(build_attacks(section, ["EAP", "PGM"])) == ["ead", "pgd"]
    with pytest.raises(AttackParamError, match=r"no parameters configured for attacks \['vat'\]"):
        build_attacks(section, ["fgsm", "vat"])
    with pytest.raises(AttackParamError, match="fgsm: parameter 'eps'"):
        build_attacks({"fgsm": {"eps": -1}})


def test_typed_parameters_build_their_attack_without_revalidating_or_warning():
    params = params_class("PGM")(eps=0.3, nb_iter=15)  # the paper's short-reach PGM: advice at load only
    assert params.advice() and "eps_iter * nb_iter = 0.15 < eps = 0.3" in params.advice()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attack = attack_for(params)
        built = build_attacks({"pgd": params, "fgsm": params_class("fgsm")()})
    assert attack.params is params and attack.name == "pgd" and built["pgd"].params is params
    with pytest.raises(AttackParamError, match="fgsm: given the parameters of pgd"):
        build_attacks({"fgsm": params})
    with pytest.raises(TypeError, match="fgsm takes FGSMParams, got PGDParams"):
        type(build_attack("fgsm"))(params)


def test_headline_parameters_leave_out_routine_defaults():
    assert params_class("pgd")(eps=0.3, nb_iter=40, seed=1).headline() == {
        "ord": "inf", "eps": 0.3, "eps_iter": 0.01, "nb_iter": 40, "rand_init": True, "seed": 1,
    }  # fmt: skip
    assert params_class("vat")(eps=2.0).headline() == {
        "eps": 2.0, "xi": 1e-6, "num_iterations": 1, "vanishing_gradient": "return_input",
    }  # fmt: skip


def test_defaults_are_what_the_authors_ran():
    """The authors' code, SVHN/CIFAR-10 column; Cleverhans' defaults where the authors set nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgd = build_attack("PGM").params
    assert (pgd.eps, pgd.eps_iter, pgd.nb_iter, pgd.rand_init) == (0.1, 0.01, 5, True)
    assert build_attack("FGSM").params.eps == 0.1
    vat = build_attack("VAP").params
    assert (vat.xi, vat.num_iterations, vat.eps) == (1e-6, 1, 2.0)
    ead = build_attack("EAP").params
    assert (ead.binary_search_steps, ead.max_iterations, ead.beta, ead.initial_const, ead.learning_rate) == (
        1,
        5,
        1e-2,
        0.1,
        0.1,
    )
    assert (ead.decision_rule, ead.abort_early, ead.confidence) == ("EN", False, 0.0)
    for name in ATTACK_NAMES:
        params = build_attack(name, **QUICK[name]).params
        assert (params.clip_min, params.clip_max) == (0.0, 1.0)


def test_pgd_warns_when_it_cannot_reach_its_eps_ball():
    with pytest.warns(UserWarning, match=r"eps_iter \* nb_iter = 0.15 < eps = 0.3"):
        build_attack("pgd", eps=0.3, nb_iter=15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_attack("pgd", eps=0.3, eps_iter=0.01, nb_iter=40)


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("fgsm", {"eps": -0.1}, "'eps'"),
        ("fgsm", {"eps": math.nan}, "'eps'"),
        ("fgsm", {"eps": "big"}, "'eps'"),
        ("fgsm", {"ord": 3}, "'ord': ord must be inf, 2 or 1"),
        ("apgd", {"ord": 1, "n_iter": 2}, "n_iter must be at least 3"),
        ("square", {"eps": 0}, "'eps'"),
        ("square", {"n_queries": 0}, "'n_queries'"),
        ("apgd_t", {"n_targets": 0}, "'n_targets'"),
        ("fgsm", {"clip_min": 1.0, "clip_max": 0.0}, "clip_min"),
        ("fgsm", {"batch_size": 0}, "'batch_size'"),
        ("fgsm", {"epsilon": 0.1}, "unknown parameter 'epsilon'"),
        ("pgd", {"nb_iter": 0}, "'nb_iter'"),
        ("pgd", {"eps_iter": 0}, "'eps_iter'"),
        ("pgd", {"nb_iter": 2.5}, "'nb_iter'"),
        ("vat", {"xi": 0}, "'xi'"),
        ("vat", {"num_iterations": 0}, "'num_iterations'"),
        ("vat", {"targeted": True}, "unknown parameter 'targeted'"),
        ("ead", {"max_iterations": 0}, "'max_iterations'"),
        ("ead", {"binary_search_steps": 0}, "'binary_search_steps'"),
        ("ead", {"beta": -1e-3}, "'beta'"),
        ("ead", {"initial_const": 0}, "'initial_const'"),
        ("ead", {"decision_rule": "L2"}, "'decision_rule'"),
        ("ead", {"confidence": -1}, "'confidence'"),
    ],
)
def test_bad_parameters_raise_value_errors_naming_them(name, params, expected):
    with pytest.raises(AttackParamError, match=expected) as info:
        build_attack(name, **params)
    assert isinstance(info.value, ValueError)
    assert info.value.args[0].startswith(f"{name}: ")


def test_parameter_spellings_that_configs_use():
    assert build_attack("ead", decision_rule="l1").params.decision_rule == "L1"
    assert build_attack("fgsm", ord="inf").params.ord == math.inf
    assert build_attack("fgsm", ord=2).params.ord == 2.0


def test_construction_is_cheap_and_side_effect_free():
    state = torch.random.get_rng_state()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(200):
            for name in ATTACK_NAMES:
                build_attack(name)
    assert time.perf_counter() - start < 2.0
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_inputs_outside_the_box_raise_naming_the_bound(name, x):
    attack, model = build_attack(name, **QUICK[name]), tiny_model()
    with pytest.raises(ValueError, match="clip_max=1.0"):
        attack(model, x * 1.5 + 0.01)
    with pytest.raises(ValueError, match="clip_min=0.0"):
        attack(model, x - 0.5)
    with pytest.raises(ValueError, match="outside"):
        attack(model, torch.where(x > 0.5, math.nan, x))
    with pytest.raises(ValueError, match="floating-point"):
        attack(model, (x * 255).to(torch.uint8))
    shifted = build_attack(name, **QUICK[name], clip_min=-1.0, clip_max=1.0)(model, x * 2 - 1)
    assert shifted.min() >= -1 and shifted.max() <= 1


def test_label_errors(x):
    model = tiny_model()
    with pytest.raises(ValueError, match="y must have shape"):
        build_attack("fgsm")(model, x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        build_attack("fgsm")(model, x, torch.zeros(len(x)))
    for name in ("fgsm", "pgd", "ead"):
        with pytest.raises(ValueError, match="targeted attack needs the target labels"):
            build_attack(name, **QUICK[name], targeted=True)(model, x)


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_model_state_is_untouched(name, x):
    """Eval mode while attacking; afterwards each submodule's mode, the weights, BN statistics and any
    parameter .grad (set or None) are as they were."""
    model = tiny_model().train()
    model[3].eval()  # a mixed state must come back exactly, not as a blanket train()
    model[0].weight.grad = torch.full_like(model[0].weight, 0.5)
    modes = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(module.training))

    out = build_attack(name, **QUICK[name])(model, x)

    assert seen and not any(seen), "the model must run in eval mode during generation"
    assert [m.training for m in model.modules()] == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(model[0].weight.grad, torch.full_like(model[0].weight, 0.5))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "0.weight")
    assert out.shape == x.shape


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_outputs_are_fresh_detached_and_in_the_box(name, x):
    model = tiny_model().eval()
    before = x.clone()
    leaf = x.clone().requires_grad_(True)
    out = build_attack(name, **QUICK[name])(model, leaf)
    assert torch.equal(x, before)
    assert not out.requires_grad and out.grad_fn is None
    assert out.data_ptr() != leaf.data_ptr()
    assert out.dtype == x.dtype and out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    assert (out != x).any(), "the attack changed nothing at all"


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_works_inside_no_grad_and_inference_mode_and_in_float64(name, x):
    model = tiny_model().eval()
    attack = build_attack(name, **QUICK[name])
    reference = attack(model, x)
    with torch.no_grad():
        assert torch.equal(attack(model, x), reference)
    with torch.inference_mode():
        inference_x = x.clone()
        assert torch.allclose(attack(model, inference_x), reference)
    doubled = attack(model.double(), x.double())
    assert doubled.dtype == torch.float64
    if name == "fgsm":  # random draws and EAD's discrete decisions differ between float32 and float64
        assert torch.allclose(doubled.float(), reference, atol=1e-4)


@pytest.mark.parametrize("name", ["pgd", "vat", "apgd"])
def test_seeded_determinism(name, x):
    model = tiny_model().eval()
    params = {k: v for k, v in QUICK[name].items() if k != "seed"}
    first = build_attack(name, **params, seed=3)(model, x)
    assert torch.equal(first, build_attack(name, **params, seed=3)(model, x))
    assert not torch.equal(first, build_attack(name, **params, seed=4)(model, x))
    unseeded = build_attack(name, **params)
    from_generator = unseeded(model, x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(from_generator, first)
    torch.manual_seed(9)
    global_rng = unseeded(model, x)
    torch.manual_seed(9)
    assert torch.equal(global_rng, unseeded(model, x))


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_results_do_not_depend_on_the_chunk_size(name, x):
    """Chunking (and EAD's pool of independent samples, 4 chunks here, refilled as samples finish) is an
    implementation detail, not a semantics."""
    model = tiny_model().eval()
    small = build_attack(name, **QUICK[name], batch_size=3)(model, x)
    whole = build_attack(name, **QUICK[name], batch_size=len(x))(model, x)
    assert torch.allclose(small, whole, atol=1e-5)


def test_default_chunks_hold_about_the_same_bytes_of_input_on_cpu():
    """Measured best on 2 CPUs (docs/benchmarks.md): 382 MNIST images, 97 CIFAR-10 images per chunk."""
    attack = build_attack("fgsm")
    assert attack.chunk_size(torch.zeros(5, 1, 28, 28)) == 382
    assert attack.chunk_size(torch.zeros(5, 3, 32, 32)) == 97
    assert attack.chunk_size(torch.zeros(5, 3, 1000, 1000)) == 1  # never zero
    assert build_attack("fgsm", batch_size=50).chunk_size(torch.zeros(5, 1, 28, 28)) == 50


def test_ead_runs_with_any_max_iterations_and_long_searches(x):
    """Peers divide by max_iterations // 10 in their early-abort check: 1-9 iterations must work too."""
    model, x = tiny_model().eval(), x[:8]
    for iterations in (1, 2, 3, 9):
        out = build_attack("ead", max_iterations=iterations, binary_search_steps=2, abort_early=True)(
            model, x
        )
        assert out.shape == x.shape
    # binary_search_steps >= 10 repeats the last step at the upper bound (Cleverhans, Chen et al.)
    assert build_attack("ead", max_iterations=2, binary_search_steps=10)(model, x).shape == x.shape


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["fgsm", "pgd", "apgd", "apgd_t", "square"]),
    eps=st.floats(0.0, 0.5),
    ord_=st.sampled_from([math.inf, 2.0, 1.0]),
    targeted=st.booleans(),
    n=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_gradient_attacks_respect_their_budget(name, eps, ord_, targeted, n, seed):
    model = tiny_model().eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    """Every norm's budget (to 1e-5 relative, 1e-6 absolute: float rounding of the projections) and the box;
    L1 (ord 1) scales eps by 10, a budget comparable to the others on 64 pixels."""
    eps = eps * 10 if ord_ == 1 else eps
    params = {"eps": eps, "ord": ord_, "batch_size": 4}
    if name in ("fgsm", "pgd"):
        params["targeted"] = targeted
    if name == "pgd":
        params.update(eps_iter=max(eps / 3, 1e-3), nb_iter=4, seed=seed)
    elif name in ("apgd", "apgd_t"):
        params.update(n_iter=4, seed=seed)
    elif name == "square":
        params.update(eps=max(eps, 1e-3), n_queries=12, seed=seed)
    out = build_attack(name, **params)(model, x, y)
    delta = (out - x).flatten(1)
    norms = torch.linalg.vector_norm(delta, ord=ord_, dim=1)
    assert (norms <= params["eps"] * (1 + 1e-5) + 1e-6).all()
    assert out.min() >= 0 and out.max() <= 1


@settings(max_examples=15, deadline=None)
@given(
    eps=st.floats(0.0, 8.0),
    xi=st.sampled_from([1e-6, 1e-3, 1.0]),
    n=st.integers(1, 6),
    seed=st.integers(0, 99),
)
def test_vat_respects_its_l2_budget(eps, xi, n, seed):
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    out = build_attack("vat", eps=eps, xi=xi, num_iterations=2, seed=seed)(tiny_model().eval(), x)
    assert ((out - x).flatten(1).norm(dim=1) <= eps * (1 + 1e-5) + 1e-6).all()
    assert out.min() >= 0 and out.max() <= 1


def test_vat_uses_no_labels(x):
    model = tiny_model().eval()
    attack = build_attack("vat", **QUICK["vat"])
    reference = attack(model, x)
    assert torch.equal(attack(model, x, torch.randint(0, 10, (len(x),))), reference)
    assert torch.equal(attack(model, x, torch.zeros(len(x), dtype=torch.long)), reference)


def test_vat_can_keep_its_direction_when_the_gradient_vanishes(x):
    """A flat model has zero KL gradient: with keep_direction the perturbation stays finite, eps long, in
    its random direction (the default returns the input: tests/test_vat_vanishing_gradient.py)."""
    flat = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    nn.init.zeros_(flat[1].weight)
    x = x * 0.5 + 0.25  # no clipping, so the full eps shows
    params = {"eps": 0.2, "xi": 1e-6, "num_iterations": 3, "seed": 0}
    out = build_attack("vat", **params, vanishing_gradient="keep_direction")(flat, x)
    assert torch.isfinite(out).all()
    assert torch.allclose((out - x).flatten(1).norm(dim=1), torch.full((len(x),), 0.2), atol=1e-5)
