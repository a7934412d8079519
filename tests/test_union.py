"""Union robustness (Maini et al. 2020): budgets enforced per attack, the per-image union, and `amc union`
on a run's model."""

import json
from pathlib import Path

import pytest
import torch
from threshold_model import Threshold

from amc_dist import cli
from amc_dist.evaluation import union
from amc_dist.evaluation.union import UnionThreats, WithinBudget, union_errors

TINY = str(Path(__file__).parent / "configs" / "tiny.yaml")
CHEAP = ["--square-queries", "20", "--targets", "2"]  # seconds, not AutoAttack's minutes


class Shift:
    """A fake attack: adds a fixed perturbation per image."""

    def __init__(self, delta: torch.Tensor) -> None:
        self.delta = delta

    def __call__(self, model, x, y=None):
        return x + self.delta


def test_examples_outside_the_budget_are_replaced_by_the_clean_image():
    x = torch.full((3, 1, 4, 4), 0.5)
    delta = torch.zeros_like(x)
    delta[0, 0, 0, :] = 0.25  # L1 1.0: inside a budget of 1
    delta[1, 0, :, :] = 0.1  # L1 1.6: outside
    delta[2, 0, 0, 0] = 1.0 - 1e-7  # on the edge, up to float rounding: inside
    out = WithinBudget(Shift(delta), ord=1.0, eps=1.0)(None, x)
    assert torch.equal(out[0], x[0] + delta[0])
    assert torch.equal(out[1], x[1])
    assert torch.equal(out[2], x[2] + delta[2])
    linf = WithinBudget(Shift(delta), ord=float("inf"), eps=0.2)(None, x)
    assert torch.equal(linf[1], x[1] + delta[1]) and torch.equal(linf[0], x[0])


def test_the_union_is_per_image_over_every_threat_and_counts_clean_mistakes(monkeypatch):
    x = torch.zeros(6, 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor([0.45, 0.45, 0.45, 0.2, 0.2, 0.9])
    y = torch.tensor([0, 0, 0, 0, 0, 0])  # image 5 is a clean mistake
    nudge = torch.zeros_like(x)
    nudge[:, 0, 0, 0] = 0.1  # flips images 0-2 only (0.45 -> 0.55)
    far = torch.zeros_like(x)
    far[3, 0, 0, 0] = 0.6  # flips image 3, but with Linf 0.6
    only_first = nudge.clone()
    only_first[1:3] = 0

    def attacks(threats):
        return {
            "linf_a": WithinBudget(Shift(only_first), float("inf"), 0.3),
            "linf_b": WithinBudget(Shift(far), float("inf"), 0.3),  # outside its budget: fools nothing
            "l2_a": WithinBudget(Shift(nudge * (torch.arange(6) == 1).view(-1, 1, 1, 1)), 2.0, 2.0),
            "l1_a": WithinBudget(Shift(far), 1.0, 10.0),  # L1 0.6: inside
        }

    monkeypatch.setattr(union, "union_attacks", attacks)
    errors = union_errors(Threshold(), x, y)
    assert errors["clean"] == pytest.approx(1 / 6)
    assert errors["linf_a"] == pytest.approx(2 / 6) and errors["linf_b"] == pytest.approx(1 / 6)
    assert errors["linf"] == pytest.approx(2 / 6)  # images 0 and 5
    assert errors["l2"] == pytest.approx(2 / 6)  # images 1 and 5
    assert errors["l1"] == pytest.approx(2 / 6)  # images 3 and 5
    assert errors["union"] == pytest.approx(4 / 6)  # 0, 1, 3, 5: not the largest threat's 2/6


def test_the_default_threat_model_is_maini_et_al_mnist():
    threats = UnionThreats()
    assert (threats.linf_eps, threats.l2_eps, threats.l1_eps) == (0.3, 2.0, 10.0)
    assert UnionThreats.preset("mnist") == threats
    cifar = UnionThreats.preset("cifar10", square_queries=7)
    assert (cifar.linf_eps, cifar.l2_eps, cifar.l1_eps, cifar.square_queries) == (8 / 255, 0.5, 12.0, 7)
    built = union.union_attacks(threats)
    assert list(built) == ["linf", "l2", "l1"]
    assert built["linf"].stage_names == ("linf_apgd_ce", "linf_apgd_t", "linf_square")
    assert built["l1"].stage_names == ("l1_apgd_ce", "l1_apgd_t", "l1_ead", "l1_square")  # EAD before Square
    stages = {name: stage for suite in built.values() for name, stage in suite.stages.items()}
    for name, stage in stages.items():
        p = stage.attack.params
        if not name.endswith("ead"):  # EAD is minimum-norm: WithinBudget alone holds it to the budget
            assert (stage.ord, stage.eps) == (p.ord, p.eps)
        assert stage.eps == {"linf": 0.3, "l2": 2.0, "l1": 10.0}[union.threat_of(name)]
        assert getattr(p, "seed", 0) == 0  # the same table every time
    # AutoAttack's settings: 1 restart and 9 targets under Linf and L2; 5 restarts, 5 targets under L1
    assert (
        stages["linf_apgd_ce"].attack.params.n_restarts == 1
        and stages["l2_apgd_t"].attack.params.n_targets == 9
    )
    assert (
        stages["l1_apgd_ce"].attack.params.n_restarts == 5
        and stages["l1_apgd_t"].attack.params.n_targets == 5
    )
    assert (
        stages["l1_apgd_ce"].attack.params.l1_phases and stages["l2_square"].attack.params.n_queries == 5000
    )
    assert stages["l1_ead"].attack.params.decision_rule == "L1"
    assert "l1_ead" not in union.union_attacks(UnionThreats(l1_attack=None))["l1"].stage_names
    with pytest.raises(ValueError, match="apgd_iter"):
        UnionThreats(apgd_iter=0)
    with pytest.raises(ValueError, match="apgd_iter must be at least 3"):
        UnionThreats(apgd_iter=2)
    with pytest.raises(ValueError, match="unknown union preset 'svhn'"):
        UnionThreats.preset("svhn")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("union")
    args = ["run", "--config", TINY, "--set", f"run.output={out}", "--set", f"data.root={data_root}"]
    assert cli.main([*args, "--only", "target"]) == 0
    return out / "tiny"


def test_amc_union_writes_the_table_beside_the_run(tiny_run, capsys):
    args = ["union", "--run", str(tiny_run), "--images", "24", "--apgd-iter", "5", *CHEAP]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "MSD (Maini et al. 2020" in out and "58.4" in out
    payload = json.loads((tiny_run / "union" / "union.json").read_text())
    assert payload["images"] == 24 and list(payload["rows"]) == ["undefended"]
    assert payload["threats"]["square_queries"] == 20 and payload["threats"]["apgd_targets"] == 2
    row = payload["rows"]["undefended"]
    for threat in ("linf", "l2", "l1"):
        stages = [row[f"{threat}_{a}"] for a in ("apgd_ce", "apgd_t", "square")]
        assert row["clean"] <= stages[0] <= stages[1] <= stages[2] == row[threat]  # each stage adds images
        assert 0 <= row[f"{threat}_blackbox_only"] <= stages[2] - stages[1] + 1e-12
    assert row["union"] >= max(row["linf"], row["l2"], row["l1"])
    extra = sum(row[t] - row["clean"] for t in ("linf", "l2", "l1"))
    assert row["union"] <= row["clean"] + extra
    # a one-epoch LeNet on 256 images is not robust at Linf 0.3: APGD fools most of it
    assert row["linf"] > 0.5
    assert (tiny_run / "union" / "union.md").read_text().count("| undefended |") == 1
    assert "Square only (masking)" in " ".join(out.split())  # Rich wraps long lines


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rows", "amc_nonsense"], "unknown rows ['amc_nonsense']"),
        (["--rows", "amc_target"], "have no model yet"),
    ],
)
def test_amc_union_refuses_bad_input_before_any_work(tiny_run, capsys, extra, message):
    assert cli.main(["union", "--run", str(tiny_run), *extra]) == 2
    assert message in " ".join(capsys.readouterr().err.split())  # Rich wraps long lines


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--images", "0"], "argument --images: expected a whole number of at least 1, got '0'"),
        (["--apgd-iter", "-3"], "argument --apgd-iter: expected a whole number of at least 1, got '-3'"),
        (["--restarts", "two"], "argument --restarts: expected a whole number of at least 1, got 'two'"),
        (["--device", "tpu"], "argument --device: expected cpu, cuda or cuda:N, got 'tpu'"),
        (["--l2-eps", "-1"], "argument --l2-eps: expected a positive number or fraction (8/255), got '-1'"),
        (["--preset", "svhn"], "argument --preset: invalid choice: 'svhn'"),
    ],
)
def test_amc_union_arguments_are_checked_by_the_parser(capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        cli.main(["union", "--run", "somewhere", *extra])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_amc_union_can_leave_out_rows_a_run_in_progress_has_not_trained(tiny_run, tmp_path, capsys):
    out = tmp_path / "u"
    args = ["union", "--run", str(tiny_run), "--rows", "amc_target", "undefended", "--skip-missing"]
    assert cli.main([*args, "--images", "8", "--apgd-iter", "3", *CHEAP, "--out", str(out)]) == 0
    assert "skipped, no model yet: amc_target" in capsys.readouterr().err
    assert list(json.loads((out / "union.json").read_text())["rows"]) == ["undefended"]
    assert cli.main(["union", "--run", str(tiny_run), "--rows", "amc_target", "--skip-missing"]) == 2
    assert "none of the rows has a model yet" in " ".join(capsys.readouterr().err.split())


def test_union_run_refuses_no_images(tiny_run):
    from amc_dist.config import ConfigError
    from amc_dist.experiment.union_run import union_run

    with pytest.raises(ConfigError, match="images must be at least 1, got 0"):
        union_run(str(tiny_run), images=0)


def test_amc_union_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert cli.main(["union", "--run", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
