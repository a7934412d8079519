"""The config schema: shipped configs validate; each kind of bad input fails naming file and key."""

import copy
import json
import re
import warnings
from pathlib import Path

import pytest
import yaml

from amc_dist.attacks import ATTACK_NAMES, build_attacks, params_class
from amc_dist.config import AttacksConfig, ConfigError, apply_overrides, load_config, validate_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


PAPER_CONFIGS = [p for p in CONFIGS if not p.name.endswith("_union.yaml")]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = load_config(path)
    if path in PAPER_CONFIGS:  # the paper's four attacks, keyed by kind
        assert config.cascade.order == ["fgsm", "vat", "ead", "pgd"]
        assert set(config.attacks.whitebox) == set(config.attacks.blackbox) == {"fgsm", "vat", "ead", "pgd"}


def shipped(name: str) -> Path:
    return CONFIGS[[p.name for p in CONFIGS].index(name)]


def test_table1_values_reach_the_schema():
    mnist = load_config(shipped("mnist.yaml"))
    assert mnist.attacks.whitebox["pgd"] == params_class("pgd")(eps=0.3, nb_iter=15, eps_iter=0.01)
    assert mnist.attacks.blackbox["pgd"].nb_iter == 20
    assert mnist.attacks.whitebox["ead"].binary_search_steps == 5
    assert mnist.attacks.blackbox["vat"] == params_class("vat")(xi=1.0, num_iterations=10, eps=8.0)
    cifar = load_config(shipped("cifar10.yaml"))
    assert (cifar.attacks.whitebox["fgsm"].eps, cifar.attacks.blackbox["fgsm"].eps) == (0.3, 0.06)
    assert cifar.attacks.blackbox["ead"].max_iterations == 1000


@pytest.fixture
def write(tmp_path):
    base = yaml.safe_load(CONFIGS[[p.name for p in CONFIGS].index("demo.yaml")].read_text())

    def make(overrides: list[str], name: str = "bad.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(apply_overrides(base, overrides)))
        return path

    return make


@pytest.mark.parametrize(
    ("override", "key", "problem"),
    [
        ("training.epochz=3", "training.epochz", "unknown key"),
        ("surprise=1", "surprise", "unknown key"),
        ("training.epochs=three", "training.epochs", "valid integer"),
        ("training.alpha=1.5", "training.alpha", "less than or equal to 1"),
        ("training.alpha=-0.1", "training.alpha", "greater than or equal to 0"),
        ("training.optimizer=rmsprop", "training.optimizer", "'adam' or 'sgd'"),
        ("cascade.lambdas=[0.5, 0.2, 0.2, 0.2]", "cascade", "lambdas must sum to 1"),
        ("cascade.lambdas=[1.5, -0.5, 0, 0]", "cascade", r"lambdas must each lie in \[0, 1\]"),
        ("cascade.lambdas=[0.5, 0.5]", "cascade", "2 weights for 4 attacks"),
        ("cascade.order=[fgsm, FGSM]", "cascade.order", "attacks repeat"),
        ("cascade.order=[fgsm, deep-fool]", "cascade.order", "unknown attack 'deep-fool'"),
        ("cascade.order=[fgsm, deepfool]", "(top level)", r"names \['deepfool'\] with no section under"),
        ("cascade.order=[pgd_l2, pgd_l2]", "cascade.order", "attacks repeat"),
        ("attacks.whitebox.pgd_l2={ord: 2}", "attacks.whitebox", r"name an instance's kind \(pgd_l2: "),
        ("attacks.whitebox.pgd_l2={kind: cw}", "attacks.whitebox", "unknown attack 'cw'"),
        ("attacks.whitebox.pgd_l2={kind: pgd, ord: 3}", "attacks.whitebox.pgd_l2.ord", "ord must be inf"),
        ("attacks.whitebox.pgd={kind: fgsm}", "attacks.whitebox", "kind 'fgsm' differs from the attack"),
        ("attacks.whitebox.Pgd_L2={kind: pgd}", "attacks.whitebox", "unknown attack 'Pgd_L2'"),
        ("attacks.whitebox.fgsm.eps=-0.1", "attacks.whitebox.fgsm.eps", "greater than or equal to 0"),
        ("attacks.whitebox.pgd.eps_iter=0", "attacks.whitebox.pgd.eps_iter", "greater than 0"),
        ("attacks.whitebox.PGM.nb_iter=0", "attacks.whitebox.pgd.nb_iter", "greater than or equal to 1"),
        ("attacks.whitebox.fgsm.ord=3", "attacks.whitebox.fgsm.ord", "ord must be inf, 2 or 1, got 3"),
        ("attacks.whitebox.ead.clip_min=2", "attacks.whitebox.ead", r"clip_min \(2.0\) must be below"),
        ("attacks.blackbox.vat.epsilon=2", "attacks.blackbox.vat.epsilon", "unknown key"),
        ("attacks.blackbox.vat=3", "attacks.blackbox.vat", "valid dictionary or instance of VATParams"),
        ("attacks.whitebox.cw={}", "attacks.whitebox", "unknown attack 'cw'"),
        ("attacks.whitebox.PGM={}", "attacks.whitebox", r"PGM and pgd are the same attack \(pgd\)"),
        ("attacks.strong_pgd.eps=-1", "attacks.strong_pgd.eps", "greater than or equal to 0"),
        ("attacks.apgd.n_iter=0", "attacks.apgd.n_iter", "greater than or equal to 1"),
        ("attacks.apgd.loss=dlr", "attacks.apgd", r"runs APGD-CE and APGD-T \(targeted DLR\)"),
        ("attacks.apgd.eps=0.1", "attacks", "apgd's budget .* differs from strong_pgd's"),
        ("squeeze.bit_depth=9", "squeeze.bit_depth", "less than or equal to 8"),
        ("experiment.leave_out=c-w", "experiment.leave_out", "unknown attack 'c-w'"),
        ("experiment.leave_out=cw", "(top level)", "experiment.leave_out 'cw' is not in cascade.order"),
        ("experiment.variants=[magic]", "experiment.variants.0", "'target_hardened', 'local_proxy'"),
        ("cascade.order=[fgsm]", "(top level)", "leave_one_out needs at least two attacks"),
        ("cascade.order=[vat, pgd]", "(top level)", "experiment.leave_out 'fgsm' is not in cascade.order"),
        ("run.run_id=../escape", "run.run_id", "should match pattern"),
        ("ray.gpus_per_worker=0", "ray.gpus_per_worker", "greater than 0"),
        ("ray.actor_gpus=1.5", "ray.actor_gpus", "less than or equal to 1"),
    ],
)
def test_bad_values_name_the_file_and_key(write, override, key, problem):
    path = write([override])
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ")
    assert re.search(problem, message), message


def test_cascade_attack_without_a_section(write):
    path = write(["attacks.whitebox={fgsm: {eps: 0.1}}"])
    with pytest.raises(
        ConfigError, match=r"order names \['vat', 'ead', 'pgd'\] with no section under attacks.whitebox"
    ):
        load_config(path)
    path = write(["attacks.blackbox={fgsm: {eps: 0.1}, vat: {}}"])
    with pytest.raises(
        ConfigError, match=r"order names \['ead', 'pgd'\] with no section under attacks.blackbox"
    ):
        load_config(path)


def test_overrides_are_typed_and_validated(write):
    path = write([], name="ok.yaml")
    config = load_config(
        path,
        [
            "training.alpha=0.4",
            "cascade.order=[PGM, VAP]",
            "data.train_subset=500",
            "experiment.leave_out=VAP",
        ],
    )
    assert (config.training.alpha, config.cascade.order, config.data.train_subset) == (
        0.4,
        ["pgd", "vat"],
        500,
    )
    with pytest.raises(ConfigError, match=r"ok.yaml with --set training.alpha=2: training.alpha: "):
        load_config(path, ["training.alpha=2"])
    with pytest.raises(ConfigError, match=r"--set 'training.alpha': expected key.path=value"):
        load_config(path, ["training.alpha"])
    with pytest.raises(ConfigError, match=r"--set 'seed.x=1': seed is not a section"):
        load_config(path, ["seed.x=1"])


def test_unreadable_or_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: cannot read config"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("training: [unclosed")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping at the top level, got list"):
        load_config(listing)


def test_yaml_tags_are_not_executed(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(evil)


def test_attack_sections_resolve_once_to_each_attacks_typed_parameters():
    with pytest.warns(UserWarning) as caught:
        config = load_config(shipped("demo.yaml"))
    advice = sorted(str(w.message).split(":")[0] for w in caught)
    assert advice == ["attacks.blackbox.pgd", "attacks.whitebox.pgd"]  # the paper's short-reach PGM, by key
    for setting in ("whitebox", "blackbox"):
        for name, params in getattr(config.attacks, setting).items():
            assert type(params) is params_class(name)
    assert type(config.attacks.strong_pgd) is params_class("pgd")
    assert type(config.attacks.apgd) is params_class("apgd")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # given at load: building from typed parameters warns no more
        built = build_attacks(config.attacks.whitebox)
    assert built["pgd"].params is config.attacks.whitebox["pgd"]


def test_set_overrides_one_attack_parameter_and_keeps_the_rest():
    config = load_config(shipped("demo.yaml"), ["attacks.whitebox.pgd.eps=0.1", "attacks.whitebox.vat.eps=2"])
    pgd = config.attacks.whitebox["pgd"]
    assert (pgd.eps, pgd.nb_iter, pgd.eps_iter) == (0.1, 15, 0.01)
    assert config.attacks.whitebox["vat"].eps == 2.0 and config.attacks.whitebox["vat"].num_iterations == 6


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_written_config_round_trips(path):
    """What a run writes (model_dump in JSON mode, as YAML or JSON) validates back to the same config."""
    config = load_config(path)
    dumped = config.model_dump(mode="json")
    assert "loss" not in dumped["attacks"]["apgd"]  # the suite runs CE and targeted DLR: nothing to configure
    text = json.dumps(dumped, allow_nan=False)  # no float infinity: ord is written as "inf"
    assert '"ord": "inf"' in text
    assert validate_config(json.loads(text)) == config
    assert validate_config(yaml.safe_load(yaml.safe_dump(dumped))) == config


def test_apgd_takes_the_strong_pgds_budget():
    cifar = load_config(shipped("cifar10.yaml"))
    assert cifar.attacks.apgd.eps == cifar.attacks.strong_pgd.eps == 0.03137
    moved = load_config(shipped("demo.yaml"), ["attacks.strong_pgd.eps=0.2"])
    assert moved.attacks.apgd.eps == 0.2
    assert AttacksConfig().apgd.eps == AttacksConfig().strong_pgd.eps == 0.3


def test_every_attack_parameter_and_attack_section_is_described():
    for name in ATTACK_NAMES:
        for field, info in params_class(name).model_fields.items():
            assert info.description, f"{name}.{field} has no description"
    for field, info in AttacksConfig.model_fields.items():
        assert info.description, f"attacks.{field} has no description"


def test_gpu_shares_reach_steps_and_actors_and_ranks_never_share_a_gpu(write):
    from amc_dist.distributed.actors import _options
    from amc_dist.experiment.plan import resources_for

    shared = ["ray.use_gpu=true", "ray.gpus_per_worker=0.2", "ray.actor_gpus=0.01", "ray.trainer=task"]
    config = load_config(write(shared, "one_gpu.yaml"))  # a plain task may hold a share of a GPU
    assert resources_for("train", config).gpus == resources_for("evaluate", config).gpus == 0.2
    assert _options("a", config)["num_gpus"] == 0.01
    cpu = load_config(write(["ray.gpus_per_worker=0.2", "ray.actor_gpus=0.01"], "cpu.yaml"))
    assert resources_for("train", cpu).gpus == 0 and _options("a", cpu)["num_gpus"] == 0
    with pytest.raises(ConfigError, match="ranks of one training cannot share a GPU"):
        load_config(write(["ray.use_gpu=true", "ray.num_workers=2", "ray.gpus_per_worker=0.5"], "ddp.yaml"))
    with pytest.raises(ConfigError, match="trainer 'task' runs one worker"):
        load_config(write(["ray.trainer=task", "ray.num_workers=2"], "task.yaml"))


INSTANCES = {
    "attacks": {
        "whitebox": {
            "pgd_linf": {"kind": "pgd", "eps": 0.3, "eps_iter": 0.05, "nb_iter": 10},
            "pgd_l2": {"kind": "PGM", "ord": 2, "eps": 2.0, "eps_iter": 0.3, "nb_iter": 10},
            "pgd": {"eps": 0.1, "eps_iter": 0.02, "nb_iter": 5},
        },
    },
    "cascade": {"order": ["pgd_linf", "pgd_l2", "PGM"], "lambdas": [0.2, 0.3, 0.5]},
    "experiment": {"variants": ["target_hardened", "leave_one_out"], "leave_out": "pgd_l2"},
}


def test_several_instances_of_one_attack_each_keep_their_own_parameters():
    raw = copy.deepcopy(INSTANCES)
    raw["attacks"]["blackbox"] = raw["attacks"]["whitebox"]
    config = validate_config(raw)
    assert config.cascade.order == ["pgd_linf", "pgd_l2", "pgd"]
    assert config.experiment.leave_out == "pgd_l2"
    white = config.attacks.whitebox
    assert all(type(p) is params_class("pgd") for p in white.values())
    assert (white["pgd_linf"].eps, white["pgd_l2"].ord, white["pgd_l2"].eps, white["pgd"].eps) == (
        0.3, 2.0, 2.0, 0.1
    )  # fmt: skip
    built = build_attacks(white, config.cascade.order)
    assert list(built) == ["pgd_linf", "pgd_l2", "pgd"]
    assert [a.params for a in built.values()] == [white[n] for n in built]
    # a raw section builds the same way, the instance's kind taken from its entry
    assert build_attacks(INSTANCES["attacks"]["whitebox"])["pgd_l2"].params == white["pgd_l2"]
    dumped = config.model_dump(mode="json")
    assert dumped["attacks"]["whitebox"]["pgd_l2"]["kind"] == "pgd"
    assert "kind" not in dumped["attacks"]["whitebox"]["pgd"]  # the paper's entries are written as before
    assert validate_config(yaml.safe_load(yaml.safe_dump(dumped))) == config


def test_an_instance_named_in_the_order_needs_its_section():
    raw = copy.deepcopy(INSTANCES)
    raw["attacks"]["blackbox"] = {"pgd_linf": {"kind": "pgd"}, "pgd": {}}
    with pytest.raises(ConfigError, match=r"order names \['pgd_l2'\] with no section under attacks.blackbox"):
        validate_config(raw)


def test_a_sweep_override_reaches_one_instance():
    raw = copy.deepcopy(INSTANCES)
    raw["attacks"]["blackbox"] = raw["attacks"]["whitebox"]
    config = validate_config(apply_overrides(raw, ["attacks.whitebox.pgd_l2.eps_iter=0.5"]))
    assert config.attacks.whitebox["pgd_l2"].eps_iter == 0.5
    assert config.attacks.whitebox["pgd_linf"].eps_iter == 0.05
