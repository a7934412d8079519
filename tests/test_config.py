"""The config schema: shipped configs validate; each kind of bad input fails naming file and key."""

import re
from pathlib import Path

import pytest
import yaml

from amc_dist.config import ConfigError, apply_overrides, load_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = load_config(path)
    assert config.cascade.order == ["fgsm", "vat", "ead", "pgd"]
    assert set(config.attacks.whitebox) == set(config.attacks.blackbox) == {"fgsm", "vat", "ead", "pgd"}


def test_table1_values_reach_the_schema():
    mnist = load_config(CONFIGS[[p.name for p in CONFIGS].index("mnist.yaml")])
    assert mnist.attacks.whitebox["pgd"] == {"eps": 0.3, "nb_iter": 15, "eps_iter": 0.01}
    assert mnist.attacks.blackbox["pgd"]["nb_iter"] == 20
    assert mnist.attacks.whitebox["ead"]["binary_search_steps"] == 5
    assert mnist.attacks.blackbox["vat"] == {"xi": 1.0, "num_iterations": 10, "eps": 8.0}
    cifar = load_config(CONFIGS[[p.name for p in CONFIGS].index("cifar10.yaml")])
    assert (cifar.attacks.whitebox["fgsm"]["eps"], cifar.attacks.blackbox["fgsm"]["eps"]) == (0.3, 0.06)
    assert cifar.attacks.blackbox["ead"]["max_iterations"] == 1000


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
        ("cascade.order=[fgsm, deepfool]", "cascade.order", "unknown attack 'deepfool'"),
        ("attacks.whitebox.fgsm.eps=-0.1", "attacks.whitebox", "fgsm: parameter 'eps'"),
        ("attacks.whitebox.pgd.nb_iter=0", "attacks.whitebox", "pgd: parameter 'nb_iter'"),
        ("attacks.blackbox.vat.epsilon=2", "attacks.blackbox", "vat: unknown parameter 'epsilon'"),
        ("attacks.strong_pgd.eps=-1", "attacks.strong_pgd", "pgd: parameter 'eps'"),
        ("squeeze.bit_depth=9", "squeeze.bit_depth", "less than or equal to 8"),
        ("experiment.leave_out=cw", "experiment.leave_out", "unknown attack 'cw'"),
        ("experiment.variants=[magic]", "experiment.variants.0", "'target_hardened', 'local_proxy'"),
        ("cascade.order=[fgsm]", "(top level)", "leave_one_out needs at least two attacks"),
        ("cascade.order=[vat, pgd]", "(top level)", "experiment.leave_out 'fgsm' is not in cascade.order"),
        ("run.run_id=../escape", "run.run_id", "should match pattern"),
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
