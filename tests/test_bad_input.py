"""Bad input, tried as a new user would: each entry point answers one line that names what is wrong (the
user's own text shown as typed, brackets included), never a traceback, and starts no Ray."""

import pytest

from amc_dist import cli, launch, tune

DEMO = "configs/demo.yaml"
BAD_ORDER = "cascade.order=[fgsm,xyz]"


def one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    return lines[0]


@pytest.mark.parametrize("entry", [launch.main, lambda argv: cli.main(["run", *argv])])
def test_an_unwritable_storage_is_named(entry, capsys):
    assert entry(["--config", DEMO, "--set", "run.output=/proc/forbidden/x"]) == 2
    said = "run.output /proc/forbidden/x: cannot create /proc/forbidden/x (No such file or directory)"
    assert one_line(capsys) == f"config error: {said}"


def test_launch_names_its_storage_flag(capsys):
    assert launch.main(["--config", DEMO, "--storage", "/proc/forbidden/x"]) == 2
    assert one_line(capsys).startswith("config error: --storage /proc/forbidden/x: cannot create")


@pytest.mark.parametrize(
    "entry", [launch.main, lambda argv: cli.main(["run", *argv]), lambda argv: cli.main(["train", *argv])]
)
def test_a_bracketed_override_is_echoed_whole(entry, capsys):
    assert entry(["--config", DEMO, "--set", BAD_ORDER]) == 2
    line = one_line(capsys)
    expected = f"with --set {BAD_ORDER}: (top level): cascade.order names ['xyz'] with no section under"
    assert expected in line, line


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "--config", "nope.yaml"], "config error: nope.yaml: cannot read config"),
        (["evaluate", "--checkpoint", "nope.pt"], "nope.pt: No such file or directory"),
        (["union", "--run", "/nope/run"], "config error: /nope/run: no config.yaml"),
        (["run", "--config", DEMO, "--set", "nosuch.key=[1]"], "--set nosuch.key=[1]: nosuch: unknown key"),
    ],
)
def test_amc_subcommands(argv, said, capsys):
    assert cli.main(argv) in (1, 2)
    assert said in one_line(capsys)


@pytest.mark.parametrize(
    ("entry", "said"),
    [(launch.main, "nope.yaml: cannot read config"), (tune.main, "nope.yaml: cannot read sweep file")],
)
def test_ray_entry_points_with_a_missing_file(entry, said, capsys):
    assert entry(["--config", "nope.yaml"]) == 2
    assert said in one_line(capsys)
