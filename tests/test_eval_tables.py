"""results.json content and results.md on hand-made numbers; the paper's published numbers as data."""

import json

import pytest

from amc_dist.evaluation.paper import ATTACK_ORDER, CLAIMS, DATASETS, paper_numbers, paper_value
from amc_dist.evaluation.results import build_results, central_claim
from amc_dist.evaluation.tables import (
    paper_number,
    render_markdown,
    smell_tests_table,
    strong_pgd_table,
    table2_clean,
    table3_whitebox,
    table4_blackbox,
    table5_squeezing,
    table6_leave_one_out,
    worst_case_table,
)

WHITEBOX = {
    "undefended": {"fgsm": 0.9, "ead": 0.8, "pgd": 0.95, "vat": 0.7},
    "at_fgsm": {"F": 0.05, "E": 0.5, "P": 0.6, "V": 0.4},  # the paper's letters
    "at_pgd": {"FGSM": 0.3, "EAP": 0.2, "PGM": 0.05, "VAP": 0.3},  # the paper's names
    "amc_target": {"fgsm": 0.05, "ead": 0.1, "pgd": 0.1, "vat": 0.1},
}
BLACKBOX = {
    "undefended": {"fgsm": 0.8, "ead": 0.1, "pgd": 0.8, "vat": 0.3},
    "at_proxy_fgsm": {"fgsm": 0.2, "ead": 0.05, "pgd": 0.3, "vat": 0.2},
    "amc_proxy": {"fgsm": 0.25, "ead": 0.05, "pgd": 0.3, "vat": 0.2},
}
SQUEEZING = {
    "amc_target": {"ead": 0.1, "pgd": 0.1, "ead_stronger": 0.9, "pgd_stronger": 0.9},
    "amc_target+fs": {"ead": 0.05, "pgd": 0.05, "ead_stronger": 0.5, "pgd_stronger": 0.1},
    "amc_target+fs_bpda": {"ead": 0.09, "pgd": 0.1, "ead_stronger": 0.85, "pgd_stronger": 0.88},
}
SMELL = {
    "iterative_beats_one_step": {"eps": 0.3, "fgsm": 0.5, "pgd": 0.4, "passed": False},
    "error_rises_with_eps": {
        "eps": [0.15, 0.3, 0.5],
        "pgd": [0.3, 0.4, 0.6],
        "threshold": 0.95,
        "passed": False,
    },
    "transfer_not_above_whitebox": {"passed": None, "skipped": "no proxy given"},
    "passed": False,
}


@pytest.fixture
def results():
    return build_results(
        "mnist",
        clean={"undefended": 0.012, "at_fgsm": 0.015, "at_pgd": 0.017, "amc_target": 0.013},
        whitebox=WHITEBOX,
        blackbox=BLACKBOX,
        squeezing=SQUEEZING,
        leave_one_out={"undefended": {"fgsm": 0.9}, "amc_loo": {"fgsm": 0.2}},
        strong_pgd={"amc_target": 0.99, "at_pgd": 0.5},
        smell_tests={"amc_target": SMELL},
        meta={"strong_pgd": {"eps": 0.3, "nb_iter": 40}},
    )


def test_results_json_sections_names_and_summary(results):
    assert list(results) == [
        "dataset",
        "units",
        "clean",
        "whitebox",
        "blackbox",
        "squeezing",
        "leave_one_out",
        "strong_pgd",
        "worst_case",
        "smell_tests",
        "summary",
        "meta",
    ]
    assert results["units"] == "fraction"
    # the paper's attack names and letters become ours; model order is kept
    assert list(results["whitebox"]) == list(WHITEBOX)
    assert all(list(row) == list(ATTACK_ORDER) for row in results["whitebox"].values())
    assert results["whitebox"]["at_pgd"] == {"fgsm": 0.3, "ead": 0.2, "pgd": 0.05, "vat": 0.3}
    assert results["squeezing"] == SQUEEZING and results["strong_pgd"] == {"amc_target": 0.99, "at_pgd": 0.5}
    means = results["summary"]["means"]
    assert means["whitebox"]["amc_target"] == pytest.approx(0.0875)
    assert means["blackbox"]["amc_proxy"] == pytest.approx(0.2)
    claim = results["summary"]["claims"]["whitebox"]
    assert claim["best_single"] == "at_pgd" and claim["holds"] is True
    assert claim["best_single_mean"] == pytest.approx(0.2125)
    assert claim["per_attack_best_mean"] == pytest.approx((0.05 + 0.2 + 0.05 + 0.3) / 4)
    assert results["summary"]["claims"]["blackbox"]["holds"] is False  # 20% vs 18.75%
    assert json.loads(json.dumps(results, allow_nan=False)) == results


def test_empty_sections_and_unknown_datasets():
    results = build_results("my_data", clean={"model": 0.1})
    assert results["whitebox"] == {} and results["summary"]["claims"] == {"whitebox": None, "blackbox": None}
    markdown = render_markdown(results)
    assert "| model | 10.0 |" in markdown and "paper" not in markdown.split("\n", 3)[3]
    assert "Table 3" not in markdown and "Table 5" not in markdown


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("clean", {"m": 1.5}, "clean.m: error rates are fractions"),
        ("clean", {"m": float("nan")}, "clean.m"),
        ("clean", {"m": True}, "expected an error rate"),
        ("whitebox", {"m": {"fgsm": -0.1}}, "whitebox.m.fgsm"),
        ("whitebox", {"m": 0.3}, "expected {attack: error}"),
        ("strong_pgd", {"m": "high"}, "strong_pgd.m"),
    ],
)
def test_bad_numbers_are_refused_naming_where(section, value, message):
    with pytest.raises(ValueError, match=message):
        build_results("mnist", **{section: value})


def test_markdown_tables_put_the_paper_beside_ours_with_means(results):
    md = render_markdown(results)
    lines = md.splitlines()
    assert lines[0] == "# Results: mnist"
    assert "| undefended | 1.2 (paper 0.9) |" in lines
    assert "| at_fgsm | 1.5 |" in lines  # Table 2 has no per-attack AT numbers...
    assert "| at_mean (2 models) | 1.6 (paper 1.4) |" in lines  # ...only their mean
    assert "| model | F (FGSM) | E (EAP) | P (PGM) | V (VAP) | mean |" in lines
    assert (
        "| amc_target | 5.0 (paper 5.1) | 10.0 (paper 8.4) | 10.0 (paper 3.1) | 10.0 (paper 3.2) "
        "| 8.8 (paper 4.95) |" in lines
    )
    assert (
        "| at_pgd | 30.0 (paper 31.6) | 20.0 (paper 27.0) | 5.0 (paper 4.4) | 30.0 (paper 33.1) "
        "| 21.3 (paper 24.02) |" in lines
    )
    assert (
        "| at_proxy_fgsm | 20.0 (paper 17.2) | 5.0 (paper 3.68) | 30.0 (paper 25.1) | 20.0 (paper 21.3) "
        "| 18.8 (paper 16.82) |" in lines
    )
    assert (
        "Central claim (mean over the four attacks): amc_target 8.75% vs the best single-attack model "
        "at_pgd 21.25%: the claim holds here. Against the best model picked per attack (the paper's "
        "comparison): 15.00%." in lines
    )
    assert "Paper: amc_target 4.95% vs at_pgd 24.02%, per-attack best 11.22%." in lines
    assert any(
        line.startswith("Central claim") and "amc_proxy 20.00%" in line and "does NOT hold" in line
        for line in lines
    )


def test_markdown_squeezing_leave_one_out_strong_pgd_and_smell_tests(results):
    lines = render_markdown(results).splitlines()
    assert "| model | EAP | PGM | EAP stronger | PGM stronger |" in lines
    assert (
        "| amc_target+fs | 5.0 (paper 3.1) | 5.0 (paper 2.9) | 50.0 (paper 44.6) | 10.0 (paper 6.73) |"
        in lines
    )
    assert "| amc_target+fs_bpda | 9.0 | 10.0 | 85.0 | 88.0 |" in lines  # the paper never ran BPDA
    assert "| amc_loo | 20.0 (paper 15.4) |" in lines
    assert "## Beyond the paper: white-box error under a standard strong PGD (eps 0.3, nb_iter 40)" in lines
    assert "| amc_target | 99.0 | 8.8 |" in lines
    assert "| amc_target | iterative beats one-step | eps 0.3: FGSM 50.0, PGD 40.0 | FLAG |" in lines
    assert (
        "| amc_target | error rises to >= 95.0 with eps | PGD 0.15: 30.0, 0.3: 40.0, 0.5: 60.0 | FLAG |"
        in lines
    )
    assert "| amc_target | transfer does not beat white-box | no proxy given | skipped |" in lines


def test_each_table_function_renders_its_own_section_in_the_papers_order(results):
    titles = {
        table2_clean: "## Table 2: clean error",
        table3_whitebox: "## Table 3: white-box error",
        table4_blackbox: "## Table 4: black-box error",
        table5_squeezing: "## Table 5: feature squeezing",
        table6_leave_one_out: "## Table 6: leave one attack out",
        strong_pgd_table: "## Beyond the paper: white-box error under a standard strong PGD",
        smell_tests_table: "## Beyond the paper: gradient-masking smell tests",
    }
    paper, empty = paper_numbers("mnist"), build_results("mnist")
    sections = []
    for table, title in titles.items():
        lines = table(results, paper)
        assert lines[0] == "" and lines[1].startswith(title) and lines[2] == ""
        assert [line for line in lines if line.startswith("#")] == [lines[1]]
        assert table(empty, paper) == []  # a section with no numbers is left out
        sections += lines
    markdown = render_markdown(results).splitlines()
    assert markdown[3:] == sections  # after the title and the legend, the tables in the paper's order
    assert "| at_mean (2 models) | 1.6 (paper 1.4) |" in table2_clean(results, paper)
    assert any(line.startswith("Central claim") for line in table3_whitebox(results, paper))


def test_central_claim_needs_all_four_attacks():
    table = {"amc_target": {"fgsm": 0.1, "ead": 0.1, "pgd": 0.1}, "at_fgsm": dict.fromkeys(ATTACK_ORDER, 0.5)}
    assert central_claim(table, "amc_target", "at_") is None
    table["amc_target"]["vat"] = 0.6
    claim = central_claim(table, "amc_target", "at_")
    assert claim["amc_mean"] == pytest.approx(0.225) and claim["holds"] is True


def test_paper_number_formatting():
    assert [paper_number(v) for v in (27.0, 3.68, 91.56, 4.95, 24.025, 0.2)] == [
        "27.0",
        "3.68",
        "91.56",
        "4.95",
        "24.02",
        "0.2",
    ]


# --------------------------------------------------------------------------------------------- the paper


def test_paper_numbers_have_the_tables_shapes():
    for dataset in DATASETS:
        paper = paper_numbers(dataset)
        assert set(paper) == {"clean", "whitebox", "blackbox", "squeezing", "leave_one_out"}
        assert set(paper["clean"]) == {
            "undefended",
            "at_mean",
            "at_proxy_mean",
            "amc_target",
            "amc_proxy",
            "proxy",
        }
        assert list(paper["whitebox"]) == [
            "undefended",
            "at_fgsm",
            "at_ead",
            "at_pgd",
            "at_vat",
            "amc_target",
        ]
        assert list(paper["blackbox"]) == [
            "undefended",
            "at_proxy_fgsm",
            "at_proxy_ead",
            "at_proxy_pgd",
            "at_proxy_vat",
            "amc_proxy",
        ]
        for section in ("whitebox", "blackbox"):
            assert all(list(row) == list(ATTACK_ORDER) for row in paper[section].values())
        assert list(paper["squeezing"]) == ["amc_target", "amc_target+fs"]
        # Table 5's normal AMC row is Table 3's AMC row; Table 6's undefended is Table 3's FGSM
        assert paper["squeezing"]["amc_target"]["ead"] == paper["whitebox"]["amc_target"]["ead"]
        assert paper["squeezing"]["amc_target"]["pgd"] == paper["whitebox"]["amc_target"]["pgd"]
        assert paper["leave_one_out"]["undefended"]["fgsm"] == paper["whitebox"]["undefended"]["fgsm"]
        assert set(CLAIMS[dataset]) == {
            "whitebox_gain",
            "blackbox_gain",
            "fs_gain_normal",
            "fs_gain_stronger",
        }


def test_paper_headline_numbers_match_the_reference():
    """REFERENCE.md section 1: white-box AMC target-hardened F/E/P/V and Table 2's clean errors."""
    headline = {
        "mnist": (5.1, 8.4, 3.1, 3.2),
        "svhn": (2.4, 4.9, 25.1, 4.5),
        "cifar10": (10.6, 23.9, 62.5, 11.0),
    }
    for dataset, row in headline.items():
        assert tuple(paper_numbers(dataset)["whitebox"]["amc_target"].values()) == row
    assert [paper_value(d, "clean", "amc_target") for d in DATASETS] == [1.4, 1.3, 9.3]
    assert [paper_value(d, "clean", "undefended") for d in DATASETS] == [0.9, 3.3, 9.5]
    assert paper_value("svhn", "whitebox", "at_ead", "pgd") == 91.56  # as printed
    assert paper_value("mnist", "whitebox", "amc_target", "strong") is None
    assert paper_value("mnist", "clean", "at_fgsm") is None and paper_numbers("my_data") == {}


def test_paper_numbers_are_a_fresh_copy():
    paper_numbers("mnist")["whitebox"]["amc_target"]["fgsm"] = 99.0
    assert paper_numbers("mnist")["whitebox"]["amc_target"]["fgsm"] == 5.1


def test_product_text_cites_no_file_outside_the_repository(results):
    """The tables, the code, the configs and the docs name no file a user of the repository cannot open."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    assert "REFERENCE.md" not in render_markdown(results)
    shipped = [
        *root.glob("amc_dist/**/*.py"),
        *root.glob("configs/*.yaml"),
        *root.glob("docs/*.md"),
        root / "README.md",
    ]
    citing = [str(p.relative_to(root)) for p in shipped if "REFERENCE.md" in p.read_text()]
    assert citing == []


def test_worst_case_section_and_table():
    suite = {"apgd_ce": 0.2, "apgd_t": 0.25, "square": 0.28, "blackbox_only": 0.03}
    worst = {
        "amc_target": {
            "pgd_strong": 0.87,
            **dict(zip(suite, (0.9, 0.92, 0.92, 0.0), strict=True)),
            "worst_case": 0.93,
        },
        "amc_target+fs_bpda": {"pgd_strong": 0.17, **suite, "worst_case": 0.3},
    }
    params = {
        "strong_pgd": {"eps": 0.3, "nb_iter": 40},
        "apgd": {"eps": 0.3, "n_iter": 100},
        "apgd_t": {"n_targets": 9},
        "square": {"n_queries": 5000},
    }
    results = build_results("mnist", worst_case=worst, meta={"worst_case": params})
    assert results["worst_case"] == worst
    with pytest.raises(ValueError, match=r"worst_case.m.apgd_ce: error rates are fractions"):
        build_results("mnist", worst_case={"m": {"apgd_ce": 2.0}})
    lines = worst_case_table(results, paper_numbers("mnist"))
    assert (
        lines[1] == "## Beyond the paper: worst case of strong PGD and APGD-CE, APGD-T, Square "
        "(white-box, true labels)"
    )
    assert (
        "Parameters: strong PGD: eps 0.3, nb_iter 40; APGD: eps 0.3, n_iter 100; APGD-T: n_targets 9; "
        "Square: n_queries 5000." in lines[3]
    )
    header = "| model | strong PGD | APGD-CE | +APGD-T | +Square | worst case | gradient masking |"
    assert header in lines
    assert "| amc_target | 87.0 | 90.0 | 92.0 | 92.0 | 93.0 | no |" in lines
    assert "| amc_target+fs_bpda | 17.0 | 20.0 | 25.0 | 28.0 | 30.0 | FLAG: Square alone 3.0 |" in lines
    assert worst_case_table(build_results("mnist"), paper_numbers("mnist")) == []
    markdown = render_markdown(results)
    assert (
        markdown.index("worst case of strong PGD") > 0
        and "| amc_target | 87.0 | 90.0 | 92.0 | 92.0 | 93.0 | no |" in markdown
    )
