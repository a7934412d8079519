"""Attack errors (white-box and transfer), Table 5's "stronger" parameters and squeezing with BPDA, the
gradient-masking smell tests and the one-model report, on small MLPs trained on real MNIST images."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amc_dist.attacks import build_attack, build_attacks, params_class
from amc_dist.attacks.squeeze import BitDepth, SqueezedModel
from amc_dist.config import AttacksConfig, Config, SqueezeConfig, load_config
from amc_dist.data import load_dataset
from amc_dist.evaluation.clean import error_rate
from amc_dist.evaluation.report import evaluate_model, single_model_results
from amc_dist.evaluation.robustness import attack_errors, stronger, transfer_errors
from amc_dist.evaluation.smell import eps_sweep_grid, smell_rows, smell_tests
from amc_dist.evaluation.squeezing import squeezing_table
from amc_dist.evaluation.tables import render_markdown
from amc_dist.evaluation.worst_case import STRONG_ATTACKS, strong_attacks, worst_case, worst_case_errors


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two threads on two shared cores oversubscribe badly; one is several times faster for these sizes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_mlp(x, y, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):  # full batch
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def mnist():
    data = load_dataset("mnist", "train")
    x, y = torch.from_numpy(data.x[:1100]), torch.from_numpy(data.y[:1100])
    return x, y


@pytest.fixture(scope="module")
def models(mnist, one_thread, seed):
    """The target and an independent proxy (other images, other seed); then 100 unseen images (uint8)."""
    x, y = mnist
    unit = x.float() / 255
    target = train_mlp(unit[:500], y[:500], seed=2 * seed)
    proxy = train_mlp(unit[500:1000], y[500:1000], seed=2 * seed + 1)
    return target, proxy, x[1000:], y[1000:]


class Rounded(nn.Module):
    """A gradient-masked model: the honest model's logits rounded, so every input gradient is zero."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.round(self.model(x) * 100) / 100


class Recorder:
    """An attack that returns its input unchanged and records what it was given."""

    def __init__(self):
        self.calls = []

    def __call__(self, model, x, y=None):
        self.calls.append((model, len(x), y))
        return x.clone()


def manual_error(model, x_adv, y):
    with torch.no_grad():
        return (model(x_adv).argmax(1) != y).float().mean().item()


# ------------------------------------------------------------------------------------------- attack_errors


def test_identity_attack_gives_the_clean_error_for_uint8_and_float_images(models):
    target, _, x, y = models
    for images in (x, x.float() / 255):
        errors = attack_errors(target, images, y, {"none": Recorder()})
        assert errors == {"none": pytest.approx(error_rate(target, images, y), abs=1e-6)}
    assert 0 < errors["none"] < 0.5  # a trained model, not a constant one


def test_whitebox_crafts_on_the_model_and_transfer_on_the_source(models):
    target, proxy, x, y = models
    unit = x.float() / 255
    fgsm = build_attack("fgsm", eps=0.1)
    white = attack_errors(target, x, y, {"fgsm": fgsm})["fgsm"]
    transfer = attack_errors(target, x, y, {"fgsm": fgsm}, source=proxy)["fgsm"]
    assert white == pytest.approx(manual_error(target, fgsm(target, unit), y), abs=1e-6)
    assert transfer == pytest.approx(manual_error(target, fgsm(proxy, unit), y), abs=1e-6)
    clean = error_rate(target, x, y)
    assert white > transfer > clean  # transfer hurts, but the model's own gradient hurts more

    seen = Recorder()
    attack_errors(target, x, y, {"r": seen}, source=proxy)
    attack_errors(target, x, y, {"r": seen})
    assert [call[0] for call in seen.calls] == [proxy, target]


def test_labels_given_to_attacks_are_a_choice(models):
    target, _, x, y = models
    seen = Recorder()
    attack_errors(target, x, y, {"r": seen})
    attack_errors(target, x, y, {"r": seen}, labels="true")
    assert seen.calls[0][2] is None  # the model's own predictions, as the paper's authors ran
    assert torch.equal(seen.calls[1][2], y)
    with pytest.raises(ValueError, match="labels"):
        attack_errors(target, x, y, {"r": seen}, labels="guess")


def test_examples_are_crafted_once_for_all_targets_and_blocks_do_not_change_results(models):
    target, proxy, x, y = models
    seen = Recorder()
    reported = []
    errors = transfer_errors(
        {"a": target, "b": proxy},
        x,
        y,
        {"r": seen, "fgsm": build_attack("fgsm", eps=0.1)},
        source=proxy,
        block=30,
        on_result=lambda attack, e: reported.append((attack, e)),
    )
    assert [call[1] for call in seen.calls] == [30, 30, 30, 10]  # once per block, not once per target
    assert errors["a"]["r"] == pytest.approx(error_rate(target, x, y), abs=1e-6)
    assert errors["b"]["r"] == pytest.approx(error_rate(proxy, x, y), abs=1e-6)
    whole = transfer_errors({"a": target}, x, y, {"fgsm": build_attack("fgsm", eps=0.1)}, source=proxy)
    assert errors["a"]["fgsm"] == whole["a"]["fgsm"]
    assert [name for name, _ in reported] == ["r", "fgsm"] and reported[1][1] == {
        "a": errors["a"]["fgsm"],
        "b": errors["b"]["fgsm"],
    }


def test_bad_inputs_are_refused(models):
    target, _, x, y = models
    with pytest.raises(ValueError, match="at least one"):
        attack_errors(target, x[:0], y[:0], {"r": Recorder()})
    with pytest.raises(ValueError, match="labels"):
        attack_errors(target, x, y[:-1], {"r": Recorder()})


# ------------------------------------------------------------------------------------------------ stronger


def typed(name, **params):
    return params_class(name)(**params)


def test_stronger_doubles_exactly_what_the_paper_says():
    pgd = typed("pgd", eps=0.3, nb_iter=15, eps_iter=0.01, rand_init=True)
    assert stronger(pgd) == typed("pgd", eps=0.6, nb_iter=30, eps_iter=0.01, rand_init=True)
    ead = typed("ead", beta=0.01, binary_search_steps=5, max_iterations=8, initial_const=1e-3)
    assert stronger(ead) == ead.model_copy(update={"binary_search_steps": 10, "max_iterations": 16})
    assert pgd.eps == 0.3 and ead.max_iterations == 8  # the caller's parameters are left alone
    # a doubled parameter the config left out is doubled from the attack's default
    assert stronger(typed("pgd")) == typed("pgd", eps=0.2, nb_iter=10)
    for other in ("fgsm", "vat"):
        with pytest.raises(ValueError, match="only for PGM and EAP"):
            stronger(typed(other))


@pytest.mark.parametrize("dataset", ["mnist", "svhn", "cifar10"])
def test_stronger_on_each_configs_table1_parameters(dataset):
    whitebox = load_config(f"configs/{dataset}.yaml").attacks.whitebox
    for name, doubled in (("pgd", {"eps", "nb_iter"}), ("ead", {"binary_search_steps", "max_iterations"})):
        params = whitebox[name]
        strong = stronger(params)
        changed = {k for k in type(params).model_fields if getattr(strong, k) != getattr(params, k)}
        assert changed == doubled
        assert all(getattr(strong, k) == 2 * getattr(params, k) for k in doubled)
        type(params).model_validate(strong.model_dump())  # still valid parameters


# ----------------------------------------------------------------------------------------------- squeezing

TINY_TABLE1 = {
    "ead": typed("ead", binary_search_steps=2, max_iterations=10, initial_const=1.0),
    "pgd": typed("pgd", eps=0.1, eps_iter=0.01, nb_iter=10, rand_init=False),
}


def test_squeezing_table_shape_and_an_identity_squeezer_changes_nothing(models):
    target, _, x, y = models
    table = squeezing_table(target, x[:40], y[:40], TINY_TABLE1, nn.Identity(), name="amc_target")
    assert list(table) == ["amc_target", "amc_target+fs", "amc_target+fs_bpda"]
    for row in table.values():
        assert list(row) == ["ead", "pgd", "ead_stronger", "pgd_stronger"]
        assert all(0 <= v <= 1 for v in row.values())
    # with nothing squeezed, all three settings are the same deterministic white-box attack
    assert table["amc_target"] == table["amc_target+fs"] == table["amc_target+fs_bpda"]
    assert (
        table["amc_target"]["pgd"] == attack_errors(target, x[:40], y[:40], build_attacks(TINY_TABLE1))["pgd"]
    )


def test_bpda_exposes_a_squeezer_that_only_masks_the_attack(models):
    """1-bit squeezing undoes EAD's minimal perturbations made on the bare model (the paper's setting), so it
    looks like a defence; attacked through the squeezer with BPDA, the model is about as weak as without."""
    target, _, x, y = models
    table = squeezing_table(target, x, y, TINY_TABLE1, SqueezeConfig(bit_depth=1), name="m", attacks=["ead"])
    bare, squeezed, bpda = table["m"], table["m+fs"], table["m+fs_bpda"]
    assert list(bare) == ["ead", "ead_stronger"]
    assert squeezed["ead"] < bare["ead"] - 0.3  # the paper's reading: squeezing "helps"
    assert bpda["ead"] >= squeezed["ead"] + 0.3  # the adaptive attack takes it back
    assert bpda["ead_stronger"] >= squeezed["ead_stronger"]


def test_squeezing_table_needs_table1_parameters(models):
    target, _, x, y = models
    with pytest.raises(ValueError, match="pgd"):
        squeezing_table(target, x, y, {"ead": typed("ead")}, nn.Identity())


# ------------------------------------------------------------------------------------------------- smell

SMELL_PGD = typed("pgd", eps=0.2, eps_iter=0.02, nb_iter=20)


def test_eps_sweep_grid_ends_unbounded():
    assert eps_sweep_grid(0.3) == [0.15, 0.3, 0.5]
    assert eps_sweep_grid(0.2) == [0.1, 0.2, 0.4, 0.5]
    grid = eps_sweep_grid(8 / 255)
    assert grid[-1] == 0.5 and len(grid) == 5 and grid[1] == 8 / 255


def test_smell_tests_pass_an_honest_model(models):
    target, proxy, x, y = models
    result = smell_tests(target, x, y, pgd=SMELL_PGD, proxy=proxy)
    assert result["passed"] is True
    sweep = result["error_rises_with_eps"]
    assert sweep["eps"] == [0.1, 0.2, 0.4, 0.5] and sweep["pgd"][-1] >= 0.95
    one = result["iterative_beats_one_step"]
    assert one["pgd"] == sweep["pgd"][1]  # the point at the budget is the same PGD run
    transfer = result["transfer_not_above_whitebox"]
    assert set(transfer["transfer"]) == {"fgsm", "pgd"} and transfer["passed"] is True


def test_smell_tests_flag_a_gradient_masked_model(models):
    target, _, x, y = models
    masked = Rounded(target)
    assert error_rate(masked, x, y) == error_rate(target, x, y)  # same classifier, gradients hidden
    result = smell_tests(masked, x, y, pgd=SMELL_PGD, proxy=target)
    assert result["passed"] is False
    assert result["error_rises_with_eps"]["passed"] is False  # the attack stalls: error stays far from 100%
    assert result["error_rises_with_eps"]["pgd"][-1] < 0.8
    transfer = result["transfer_not_above_whitebox"]
    assert transfer["passed"] is False  # the honest twin's examples do far better than the masked model's own
    assert transfer["transfer"]["pgd"] > transfer["whitebox"]["pgd"] + 0.3


def test_smell_tests_without_a_proxy_skip_the_transfer_check(models):
    target, _, x, y = models
    result = smell_tests(target, x[:50], y[:50], pgd=SMELL_PGD, eps_grid=[0.2, 0.5])
    assert result["transfer_not_above_whitebox"] == {
        "passed": None,
        "skipped": "no black-box proxy of this model",
    }
    assert result["error_rises_with_eps"]["eps"] == [0.2, 0.5]
    assert result["passed"] is True


# ------------------------------------------------------------------------------------------------ report


def tiny_config():
    attacks = {
        "fgsm": {"eps": 0.1},
        "vat": {"xi": 1.0, "num_iterations": 1, "eps": 2.0},
        "ead": {"binary_search_steps": 1, "max_iterations": 5, "initial_const": 1.0},
        "pgd": {"eps": 0.1, "eps_iter": 0.02, "nb_iter": 5},
    }
    return Config.model_validate(
        {
            "seed": 3,
            "attacks": {
                "whitebox": attacks,
                "blackbox": attacks,
                "strong_pgd": {"eps": 0.2, "eps_iter": 0.02, "nb_iter": 10, "rand_init": True},
                "apgd": {"n_iter": 4},
                "apgd_targets": 2,
                "square_queries": 10,
            },
            "squeeze": {"bit_depth": 1},
        }
    )


def test_evaluate_model_reports_everything_for_one_model(models):
    target, proxy, x, y = models
    x, y = x[:40], y[:40]
    config = tiny_config()
    events = []
    rng = torch.get_rng_state()
    report = evaluate_model(
        target, x, y, config, proxy=proxy, on_event=events.append, name="m", smell_size=30
    )
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's random state is untouched

    assert report["clean"] == pytest.approx(error_rate(target, x, y), abs=1e-6)
    assert list(report["whitebox"]) == ["fgsm", "vat", "ead", "pgd"]  # the config's order
    assert report["whitebox"]["ead"] == report["squeezing"]["m"]["ead"]  # one run serves Tables 3 and 5
    assert list(report["squeezing"]) == ["m", "m+fs", "m+fs_bpda"]
    assert list(report["strong_pgd"]) == ["m", "m+fs", "m+fs_bpda"]
    assert list(report["blackbox"]) == ["fgsm", "vat", "ead", "pgd"]
    assert list(report["smell_tests"]) == ["m", "m+fs_bpda"]  # the squeezed model too, through BPDA
    for smell in report["smell_tests"].values():
        assert smell["n"] == 30 and set(smell["transfer_not_above_whitebox"]["transfer"]) == {"fgsm", "pgd"}
    assert (
        report["meta"]["squeezer"] == "bit_depth=1"
        and report["meta"]["attack_labels"]["table1"] == "predicted"
    )

    assert [e["step"] for e in events] == list(range(len(events)))
    assert all(e["kind"] == "eval" and e["stage"] == "evaluate" and 0 <= e["error_rate"] <= 1 for e in events)
    settings = {e["setting"] for e in events}
    assert settings == {
        "clean", "whitebox", "squeezed", "bpda", "strong_pgd", "apgd", "worst_case", "blackbox", "smell",
    }  # fmt: skip
    assert list(report["worst_case"]) == ["m", "m+fs", "m+fs_bpda"]
    for row, worst in report["worst_case"].items():
        assert list(worst) == ["pgd_strong", "apgd_ce", "apgd_t", "square", "blackbox_only", "worst_case"]
        assert worst["pgd_strong"] == report["strong_pgd"][row]  # one strong-PGD run serves both sections
        assert max(worst.values()) == worst["worst_case"]
    assert report["meta"]["worst_case"]["apgd"] == {
        "ord": "inf",
        "eps": 0.2,
        "n_iter": 4,
        "n_restarts": 1,
        "rho": 0.75,
        "seed": 0,  # seeded by default: a report repeats itself
    }
    assert report["meta"]["worst_case"]["apgd_t"] == {"n_targets": 2}
    smelled = {(e["row"], e["attack"]) for e in events if e["setting"] == "smell"}
    assert ("m+fs_bpda", "transfer_not_above_whitebox") in smelled and len(smelled) == 6
    blackbox = {e["attack"]: e["error_rate"] for e in events if e["setting"] == "blackbox"}
    assert blackbox == report["blackbox"] and all(e["n"] == 40 for e in events if e["setting"] == "blackbox")

    again = evaluate_model(target, x, y, config, proxy=proxy, name="m", smell_size=30)
    assert again["strong_pgd"] == report["strong_pgd"]  # random starts are seeded

    results = single_model_results("mnist", report)
    assert results["worst_case"] == report["worst_case"]
    markdown = render_markdown(results)
    assert "| m+fs_bpda |" in markdown and "Table 4" in markdown and "smell tests" in markdown
    assert "## Beyond the paper: worst case of strong PGD and APGD-CE, APGD-T, Square" in markdown


def test_evaluate_model_without_proxy_has_no_blackbox_and_scores_clean_on_the_test_split(models):
    target, _, x, y = models
    report = evaluate_model(target, x[:20], y[:20], tiny_config(), test=(x[20:], y[20:]), smell_size=10)
    assert "blackbox" not in report
    assert report["clean"] == pytest.approx(error_rate(target, x[20:], y[20:]), abs=1e-6)
    assert report["meta"]["clean_split"] == "test split" and report["meta"]["clean_n"] == 80
    for smell in report["smell_tests"].values():
        assert smell["transfer_not_above_whitebox"]["passed"] is None


def test_a_proxy_can_serve_the_smell_tests_alone(models):
    """The experiment scores black-box errors in their own step: its P'' only crafts the transfer check."""
    target, proxy, x, y = models
    report = evaluate_model(target, x[:20], y[:20], tiny_config(), proxy=proxy, blackbox=False, smell_size=10)
    assert "blackbox" not in report and report["meta"]["blackbox"] is None
    assert all(s["transfer_not_above_whitebox"]["passed"] is not None for s in report["smell_tests"].values())


def test_squeezed_models_are_smell_tested_through_bpda(models):
    """8-bit rounding leaves MNIST images as they are but has a zero gradient: attacked without BPDA the
    squeezed model looks robust and the smell tests flag it; through BPDA it is the honest model again."""
    target, proxy, x, y = models
    rows = smell_rows(target, x, y, pgd=SMELL_PGD, name="m", proxy=proxy, squeezer=BitDepth(8), size=60)
    assert list(rows) == ["m", "m+fs_bpda"]
    assert rows["m+fs_bpda"]["n"] == rows["m"]["n"] == 60
    assert rows["m+fs_bpda"]["passed"] is True
    assert rows["m+fs_bpda"]["error_rises_with_eps"]["pgd"][-1] >= 0.95
    masked = smell_tests(SqueezedModel(target, BitDepth(8)), x[:60], y[:60], pgd=SMELL_PGD, proxy=proxy)
    assert masked["passed"] is False and masked["error_rises_with_eps"]["pgd"][-1] < 0.5


def test_a_squeezer_module_can_be_evaluated_directly(models):
    target, _, x, y = models
    bits = BitDepth(1)
    table = squeezing_table(target, x[:30], y[:30], TINY_TABLE1, bits, attacks=["pgd"])
    assert set(table["amc_target+fs"]) == {"pgd", "pgd_stronger"}


# ------------------------------------------------------------------------------------------- worst case


def test_the_worst_case_is_the_per_image_union_not_the_largest_rate():
    wrong = {
        "pgd_strong": torch.tensor([True, False, False, False]),
        "apgd_ce": torch.tensor([False, True, False, False]),
        "apgd_dlr": torch.tensor([True, True, False, False]),
    }
    assert worst_case(wrong) == {"pgd_strong": 0.25, "apgd_ce": 0.25, "apgd_dlr": 0.5, "worst_case": 0.5}
    wrong["apgd_dlr"] = torch.tensor([False, False, True, False])
    assert worst_case(wrong)["worst_case"] == 0.75


def test_the_worst_case_flags_images_only_square_fooled():
    suite = {
        "apgd_ce": torch.tensor([True, False, False, False]),
        "apgd_t": torch.tensor([True, True, False, False]),
        "square": torch.tensor([True, True, True, False]),  # image 2: the white-box attacks left it
    }
    assert worst_case(suite)["blackbox_only"] == 0.25
    suite["square"] = suite["apgd_t"]
    assert worst_case(suite)["blackbox_only"] == 0.0


def test_worst_case_errors_run_strong_pgd_and_the_suite(models):
    """Seeded attacks make each column reproducible on its own; the worst case is over the same images;
    the suite's columns are cumulative (each stage on the images the ones before left)."""
    target, _, x, y = models
    attacks = AttacksConfig(
        strong_pgd={"eps": 0.05, "eps_iter": 0.005, "nb_iter": 20, "seed": 0},
        apgd={"n_iter": 20},
        apgd_targets=3,
        square_queries=30,
    )
    built = strong_attacks(attacks)
    stages = built["suite"].stages
    assert list(stages) == ["apgd_ce", "apgd_t", "square"]
    assert stages["apgd_ce"].attack.params.loss == "ce" and stages["apgd_t"].attack.params.n_targets == 3
    assert all(s.attack.params.eps == s.eps == 0.05 for s in stages.values())  # the strong PGD's budget
    assert all(s.attack.params.seed == 0 for s in stages.values())  # seeded by default
    assert stages["square"].attack.params.n_queries == 30
    seen = []
    table = worst_case_errors(target, x, y, attacks, name="m", on_result=lambda *r: seen.append(r))
    alone = attack_errors(target, x, y, built, labels="true")
    assert list(table) == ["m"] and {k: table["m"][k] for k in alone} == alone
    row = table["m"]
    assert row["apgd_ce"] <= row["apgd_t"] <= row["square"] <= row["worst_case"]
    assert row["worst_case"] <= min(1.0, row["pgd_strong"] + row["square"])
    assert row["blackbox_only"] == pytest.approx(row["square"] - row["apgd_t"])
    assert built["suite"].replaced == 0  # no example left its budget
    assert 0.3 < row["pgd_strong"] <= row["worst_case"] < 1  # eps 0.05: a budget the model partly survives
    assert [(r, a) for r, a, _ in seen] == [("m", a) for a in (*STRONG_ATTACKS, "worst_case")]

    squeezed = worst_case_errors(target, x[:30], y[:30], attacks, name="m", squeeze=nn.Identity())
    assert list(squeezed) == ["m", "m+fs", "m+fs_bpda"]
    assert squeezed["m"] == squeezed["m+fs"] == squeezed["m+fs_bpda"]  # nothing squeezed, seeded attacks
