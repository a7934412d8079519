"""The run screen's live line charts (textual-plotext). Each chart computes its series from the run
model and replots only when they changed, so an unchanged chart costs nothing per poll."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot

from amc_tui.run_model import PAPER_ATTACKS, UNION_COLUMNS, RunModel

MAX_POINTS = 2000  # a long run's loss curve is thinned to this many points
SETTING_TAGS = {"whitebox": "wb", "blackbox": "bb", "clean": "clean", "union": "union"}
BAR_SETTINGS = ("whitebox", "squeezed", "bpda", "blackbox")  # an evaluation step's bars, per attack


def attack_label(setting: str, attack: str) -> str:
    if setting == "clean":
        return "clean"
    name = PAPER_ATTACKS.get(attack, attack)
    return f"{SETTING_TAGS.get(setting, setting)} {name}"


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    return [points[int(i * stride)] for i in range(MAX_POINTS)] + [points[-1]]


class Chart(PlotextPlot):
    """A plot redrawn from (title, series) only when they change."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: Any = None

    def show(self, model: RunModel | None, step: str | None) -> None:
        figure = self.figure(model, step) if model is not None and step is not None else ("", [], {})
        if figure == self._drawn:
            return
        self._drawn = figure
        title, series, options = figure
        plt = self.plt
        plt.clear_figure()
        plt.title(title)
        if options.get("bars"):
            labels, groups = options["bars"]
            if groups:
                plt.multiple_bar(labels, [values for _, values in groups], labels=[n for n, _ in groups])
        for name, points in series:
            xs, ys = zip(*points, strict=True) if points else ((), ())
            plt.plot(list(xs), list(ys), label=name, marker="braille" if len(points) > 1 else "dot")
        if options.get("xticks"):
            plt.xticks(*options["xticks"])
        if options.get("ylim"):
            plt.ylim(*options["ylim"])
        if options.get("xlabel"):
            plt.xlabel(options["xlabel"])
        if not series and not options.get("bars"):
            plt.title(f"{title} (no data yet)")
        self.refresh()

    def figure(self, model: RunModel, step: str) -> tuple[str, list, dict]:
        raise NotImplementedError


class ErrorOverSteps(Chart):
    """Validation error per attack over the optimiser steps of a training step, white-box and clean; for
    an evaluation step its errors per attack side by side, one bar per setting."""

    def figure(self, model: RunModel, step: str) -> tuple[str, list, dict]:
        measures = [m for m in model.measures if m.stage == m.row == step and m.metric == "error_rate"]
        kind = model.steps[step].kind if step in model.steps else "?"
        if kind == "evaluate":
            latest = {(m.setting, m.attack): 100 * m.value for m in measures}
            attacks = [a for a in model.attacks() if any(key[1] == a for key in latest)]
            groups = tuple(
                (setting, [latest.get((setting, a), 0.0) for a in attacks])
                for setting in BAR_SETTINGS
                if any((setting, a) in latest for a in attacks)
            )
            clean = latest.get(("clean", "none"))
            title = f"{step}: error % per attack" + ("" if clean is None else f" (clean {clean:.1f})")
            names = [PAPER_ATTACKS.get(a, a) for a in attacks]
            return title, [], {"bars": (names, groups), "ylim": (0, 100)}
        series: dict[str, list[tuple[float, float]]] = {}
        for m in measures:
            series.setdefault(attack_label(m.setting, m.attack), []).append((m.x, 100 * m.value))
        return (
            f"{step}: validation error % over training steps",
            sorted(series.items()),
            {"ylim": (0, 100), "xlabel": "optimiser step"},
        )


class ErrorAcrossStages(Chart):
    """The last error per attack at each stage of the cascade that leads to the step (from M0), white-box
    and black-box with clean error; an evaluation step's figures count for the model it evaluates."""

    def figure(self, model: RunModel, step: str) -> tuple[str, list, dict]:
        chain = model.chain(step)
        if not chain:
            return f"{step}: error across stages", [], {}
        series: dict[str, dict[int, float]] = {}
        for position, trained in enumerate(chain, start=1):
            sources = [trained, *model.evaluators(trained)]
            for m in model.measures:
                usable = m.metric == "error_rate" and m.setting in SETTING_TAGS
                usable = usable and (m.setting == "clean" or m.attack in (*model.attacks(), *UNION_COLUMNS))
                if usable and m.row == m.stage and m.stage in sources:
                    series.setdefault(attack_label(m.setting, m.attack), {})[position] = 100 * m.value
        lines = [(name, sorted(points.items())) for name, points in sorted(series.items())]
        ticks = (list(range(1, len(chain) + 1)), chain)
        return f"error % across stages up to {chain[-1]}", lines, {"xticks": ticks, "ylim": (0, 100)}


class LossOverSteps(Chart):
    def figure(self, model: RunModel, step: str) -> tuple[str, list, dict]:
        lines = []
        if model.loss.get(step):
            lines.append(("batch loss", _thin(model.loss[step])))
        if model.epoch_loss.get(step):
            lines.append(("epoch loss", model.epoch_loss[step]))
        return f"{step}: training loss", lines, {"xlabel": "optimiser step"}


class ProxyAgreement(Chart):
    """How often each fitted proxy agrees with the model it copies, re-fit after re-fit."""

    def figure(self, model: RunModel, step: str) -> tuple[str, list, dict]:
        fits = [m for m in model.measures if m.metric == "agreement"]
        if not fits:
            return "proxy agreement", [], {}
        points = [(i, 100 * m.value) for i, m in enumerate(fits, start=1)]
        ticks = ([p for p, _ in points], [m.stage for m in fits])
        options = {"xticks": ticks, "ylim": (0, 100)}
        return "proxy agreement % across (re-)fits", [("agreement", points)], options
