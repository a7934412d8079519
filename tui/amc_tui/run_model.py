"""One run as the dashboard sees it, folded from its schema-v1 events (amc_dist/events.py).

Folding is defensive by design: events come from files a crashed writer may have cut, from newer amc
versions, or from hand edits. Anything unusable is counted in `bad` (and noted in the log), never
raised, so bad input cannot take the dashboard down.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from amc_dist.events import (  # plain data: the schema this dashboard understands
    KINDS,
    SCHEMA_VERSION,
    measured,
)

KNOWN_KINDS = frozenset(KINDS)
STALE_AFTER = 30.0  # seconds without any event (heartbeats come every few seconds) before "stale"
LOG_LINES = 2000
# The paper's names of the four attacks (amc_dist.attacks.PAPER_NAMES, which imports torch).
PAPER_ATTACKS = {"fgsm": "FGSM", "ead": "EAP", "pgd": "PGM", "vat": "VAP"}
# The error matrix's settings, in column order; a union row's columns are its threat models and the union.
MATRIX_SETTINGS = ("whitebox", "blackbox", "union")
UNION_COLUMNS = ("linf", "l2", "l1", "union")


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (strings, booleans, NaN, missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


@dataclass
class Step:
    """One node of the run's step graph and what it is doing."""

    name: str
    kind: str = "?"
    needs: tuple[str, ...] = ()
    description: str = ""
    state: str = "pending"  # pending | running | done | skipped | failed | stopped
    started: float | None = None
    finished: float | None = None
    message: str = ""
    fit_done: int = 0  # optimiser steps of the fit in progress
    fit_total: int | None = None
    fit_first: tuple[float, int] | None = None  # (time, step) of the fit's first progress event
    fit_last: float | None = None

    def fraction(self) -> float | None:
        if self.state in ("done", "skipped"):
            return 1.0
        if self.fit_total:
            return min(1.0, self.fit_done / self.fit_total)
        return None

    def eta(self) -> float | None:
        """Seconds left in the current fit, from its step rate so far."""
        if self.state != "running" or not self.fit_total or self.fit_done >= self.fit_total:
            return None
        if self.fit_first is None or self.fit_last is None:
            return None
        first_time, first_step = self.fit_first
        steps, seconds = self.fit_done - first_step, self.fit_last - first_time
        if steps <= 0 or seconds <= 0:
            return None
        return max(0.0, (self.fit_total - self.fit_done) * seconds / steps)


@dataclass(frozen=True)
class Measure:
    """One eval figure: an error rate in [0, 1] or another metric's value."""

    stage: str
    setting: str
    attack: str
    value: float
    n: int | None
    x: float  # the optimiser step (training) or the event's counter (evaluation steps)
    epoch: int | None
    row: str  # a table row it belongs to (e.g. "amc_target+fs"), else the stage
    metric: str  # "error_rate", "agreement", ...
    time: float


@dataclass(frozen=True)
class LogLine:
    time: float
    level: str  # info | good | warn | error
    text: str


@dataclass
class RunModel:
    """Everything the screens show about one run; `apply` folds new events in, in arrival order."""

    key: str  # the run's directory: unique, where run ids may repeat across storages
    run_id: str = ""
    dataset: str = ""
    model: str = ""
    variants: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)  # the run's configured attacks (run_started)
    attempt: int | None = None
    runner: str = ""
    sweep: str = ""  # a Tune trial's sweep ("" for a plain run), its trial id and the values it tries
    trial: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    outcome: str | None = None  # run_finished's status
    failed: dict[str, str] = field(default_factory=dict)
    stopped_job: str | None = None  # the job this dashboard stopped
    first_time: float | None = None
    last_time: float | None = None
    measures: list[Measure] = field(default_factory=list)
    loss: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    epoch_loss: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    logged: int = 0  # lines ever logged (the deque keeps the last LOG_LINES)
    results_md: str | None = None  # the finished run's results.md, once read
    bad: Counter[str] = field(default_factory=Counter)
    missing: bool = False  # the source cannot find the run's directory (yet)
    revision: int = 0  # grows with every change: screens redraw what changed
    _ids: set[str] = field(default_factory=set)
    _newer_schema_noted: bool = False

    # ---- folding -------------------------------------------------------------------------------------

    def apply_all(self, events: list[Any]) -> None:
        for item in events:
            self.apply(item)

    def apply(self, item: Any) -> None:
        if not isinstance(item, dict):
            self.note_bad("not_object", f"an event that is not a JSON object: {str(item)[:60]!r}")
            return
        event_id = item.get("id")
        if isinstance(event_id, str):
            if event_id in self._ids:
                return  # delivered twice (a retried call, a re-read file)
            self._ids.add(event_id)
        kind = item.get("kind")
        schema = item.get("schema")
        if isinstance(schema, int) and schema > SCHEMA_VERSION:
            self.bad["newer_schema"] += 1
            if not self._newer_schema_noted:
                self._newer_schema_noted = True
                self._log(item, "warn", f"events of schema {schema}, newer than this amc-tui knows "
                          f"({SCHEMA_VERSION}): showing what it understands")  # fmt: skip
        if kind not in KNOWN_KINDS:
            self.note_bad("unknown_kind", f"unknown event kind {str(kind)[:40]!r}")
            return
        when = _number(item.get("time"))
        if when is not None:
            self.first_time = when if self.first_time is None else min(self.first_time, when)
            self.last_time = when if self.last_time is None else max(self.last_time, when)
        if not self.run_id:
            self.run_id = _text(item.get("run_id"))
        getattr(self, f"_on_{kind}")(item, when)
        self.revision += 1

    def note_bad(self, what: str, text: str, count: int = 1) -> None:
        if count <= 0:
            return
        self.bad[what] += count
        self._add(LogLine(time.time(), "warn", f"skipped: {text}" + (f" (x{count})" if count > 1 else "")))
        self.revision += 1

    def _step(self, item: dict[str, Any]) -> Step | None:
        name = _text(item.get("stage"))
        if not name:
            self.note_bad("missing_fields", f"a {item.get('kind')} event without its step name")
            return None
        return self.steps.setdefault(name, Step(name))

    def _log(self, item: dict[str, Any], level: str, text: str) -> None:
        when = _number(item.get("time"))
        self._add(LogLine(when if when is not None else time.time(), level, text))

    def _add(self, line: LogLine) -> None:
        self.log.append(line)
        self.logged += 1

    def _on_run_started(self, item: dict[str, Any], when: float | None) -> None:
        self.dataset = _text(item.get("dataset"), self.dataset)
        self.model = _text(item.get("model"), self.model)
        self.variants = [v for v in item.get("variants") or [] if isinstance(v, str)] or self.variants
        self.order = [v for v in item.get("order") or [] if isinstance(v, str)] or self.order
        self.configured = [v for v in item.get("attacks") or [] if isinstance(v, str)] or self.configured
        attempt = item.get("attempt")
        self.attempt = attempt if isinstance(attempt, int) else self.attempt
        self.runner = _text(item.get("runner"), self.runner)
        self.sweep, self.trial = _text(item.get("sweep"), self.sweep), _text(item.get("trial"), self.trial)
        values = item.get("values")
        self.values = values if isinstance(values, dict) else self.values
        graph = item.get("graph")
        if isinstance(graph, list):
            steps = {}
            for node in graph:
                if not isinstance(node, dict) or not isinstance(node.get("name"), str):
                    self.bad["missing_fields"] += 1
                    continue
                needs = tuple(n for n in node.get("needs") or [] if isinstance(n, str))
                steps[node["name"]] = Step(
                    node["name"], _text(node.get("kind"), "?"), needs, _text(node.get("description"))
                )
            self.steps = steps  # a new attempt starts every step afresh
        self.outcome, self.failed = None, {}
        steps_total = len(self.steps) or item.get("steps")
        self._log(item, "info", f"run started: attempt {self.attempt or '?'}, {steps_total} steps, "
                  f"{self.runner or '?'} runner")  # fmt: skip

    def _on_step_started(self, item: dict[str, Any], when: float | None) -> None:
        step = self._step(item)
        if step is None:
            return
        step.state, step.started, step.finished, step.message = "running", when, None, ""
        step.fit_done, step.fit_total, step.fit_first, step.fit_last = 0, None, None, None
        if step.kind == "?":
            step.kind = _text(item.get("step_kind"), "?")
        self._log(item, "info", f"{step.name} started")

    def _on_step_finished(self, item: dict[str, Any], when: float | None) -> None:
        step = self._step(item)
        if step is None:
            return
        skipped = item.get("skipped") is True
        step.state, step.finished = ("skipped" if skipped else "done"), when
        seconds = _number(item.get("seconds"))
        took = f" in {seconds:.1f} s" if seconds is not None else ""
        self._log(item, "good", f"{step.name} {'already complete' if skipped else 'finished' + took}")

    def _on_step_failed(self, item: dict[str, Any], when: float | None) -> None:
        step = self._step(item)
        if step is None:
            return
        step.state, step.finished = "failed", when
        step.message = _text(item.get("message"), "failed")
        self._log(item, "error", f"{step.name} FAILED: {step.message}")
        for name in item.get("stopped") or []:
            if isinstance(name, str) and name in self.steps and self.steps[name].state == "pending":
                self.steps[name].state = "stopped"

    def _on_stage_started(self, item: dict[str, Any], when: float | None) -> None:
        step = self._step(item)
        if step is None:
            return
        total = item.get("total_steps")
        step.fit_total = total if isinstance(total, int) and total > 0 else None
        step.fit_done, step.fit_first, step.fit_last = 0, None, None
        if step.state == "pending":
            step.state = "running"

    def _on_progress(self, item: dict[str, Any], when: float | None) -> None:
        step = self._step(item)
        if step is None:
            return
        at = _number(item.get("step"))
        total = item.get("total_steps")
        if isinstance(total, int) and total > 0:
            step.fit_total = total
        if at is None:
            self.bad["missing_fields"] += 1
            return
        step.fit_done = int(at)
        if when is not None:
            step.fit_first = step.fit_first or (when, int(at))
            step.fit_last = when
        if (loss := _number(item.get("loss"))) is not None:
            self.loss.setdefault(step.name, []).append((at, loss))
        if (loss := _number(item.get("epoch_loss"))) is not None:
            self.epoch_loss.setdefault(step.name, []).append((at, loss))

    def _on_eval(self, item: dict[str, Any], when: float | None) -> None:
        stage, setting = _text(item.get("stage")), _text(item.get("setting"))
        metric = _text(item.get("metric"), "error_rate")
        value = _number(item.get("error_rate" if metric == "error_rate" else "value"))
        if not stage or not setting or value is None:
            self.note_bad("missing_fields", f"an eval event without stage, setting or {metric}")
            return
        attack = _text(item.get("attack")) or ("none" if setting == "clean" else metric)
        n = item.get("n")
        epoch = item.get("epoch")
        measure = Measure(
            stage=stage,
            setting=setting,
            attack="none" if setting == "clean" else attack,
            value=value,
            n=n if isinstance(n, int) else None,
            x=_number(item.get("step")) or 0.0,
            epoch=epoch if isinstance(epoch, int) else None,
            row=_text(item.get("row"), stage),
            metric=metric,
            time=when or time.time(),
        )
        self.measures.append(measure)
        shown = f"{100 * value:.1f}%" if metric == "error_rate" else f"{value:.3f}"
        what = "clean" if setting == "clean" else measured({**item, "attack": attack})
        self._log(item, "info", f"{stage}: {what} {shown}" + (f" (n={n})" if isinstance(n, int) else ""))

    def _on_stage_finished(self, item: dict[str, Any], when: float | None) -> None:
        step = self._step(item)
        if step is not None and step.fit_total:
            step.fit_done = step.fit_total

    def _on_heartbeat(self, item: dict[str, Any], when: float | None) -> None:
        """A heartbeat names the steps in progress: one whose start we missed (a cut line) shows running."""
        running = item.get("running")
        for name in running if isinstance(running, list) else []:
            step = self.steps.get(name) if isinstance(name, str) else None
            if step is not None and step.state == "pending":
                step.state, step.started = "running", when

    def _on_run_finished(self, item: dict[str, Any], when: float | None) -> None:
        self.outcome = _text(item.get("status"), "finished")
        failed = item.get("failed")
        self.failed = {str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {}
        if self.failed or self.outcome != "done":
            detail = "; ".join(f"{k}: {v}" for k, v in self.failed.items())
            self._log(item, "error", f"run finished: {self.outcome}" + (f" ({detail})" if detail else ""))
        else:
            self._log(item, "good", "run finished: done")

    # ---- views ---------------------------------------------------------------------------------------

    def status(self, now: float | None = None) -> str:
        """running, done, failed (or another final status), stopped, stale, waiting or missing."""
        if self.stopped_job is not None and self.outcome is None:
            return "stopped"
        if self.outcome is not None:
            return self.outcome
        if self.last_time is None:
            return "missing" if self.missing else "waiting"
        if (now if now is not None else time.time()) - self.last_time > STALE_AFTER:
            return "stale"
        return "running"

    def steps_done(self) -> int:
        return sum(s.state in ("done", "skipped") for s in self.steps.values())

    def running_steps(self) -> list[str]:
        return [s.name for s in self.steps.values() if s.state == "running"]

    def elapsed(self, now: float | None = None) -> float | None:
        if self.first_time is None:
            return None
        end = self.last_time if self.outcome is not None or self.stopped_job else None
        return (end if end is not None else (now if now is not None else time.time())) - self.first_time

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left, at the pace of the steps finished so far (rough: steps differ in cost)."""
        if self.status(now) != "running":
            return None
        done, total, elapsed = self.steps_done(), len(self.steps), self.elapsed(now)
        if not done or not total or elapsed is None or done >= total:
            return None
        return elapsed * (total - done) / done

    def latest(self, stage: str | None = None) -> dict[tuple[str, str, str], Measure]:
        """The last measure per (stage, setting, attack), optionally of one stage; table rows like
        "amc_target+fs" keep their own entry."""
        out: dict[tuple[str, str, str], Measure] = {}
        for m in self.measures:
            if stage is None or m.stage == stage:
                out[(m.row, m.setting, m.attack)] = m
        return out

    def headline(self) -> tuple[float, float, str] | None:
        """(mean, worst, stage): white-box error over the paper's attacks (all attacks if none of them)
        at the stage that reported white-box errors last."""
        whitebox = [m for m in self.measures if m.setting == "whitebox" and m.metric == "error_rate"]
        if not whitebox:
            return None
        stage = whitebox[-1].stage
        latest = {m.attack: m.value for m in whitebox if m.stage == stage and m.row == stage}
        chosen = [v for a, v in latest.items() if a in PAPER_ATTACKS] or list(latest.values())
        if not chosen:
            return None
        return sum(chosen) / len(chosen), max(chosen), stage

    def attacks(self) -> list[str]:
        """The run's own attacks: those its config names (run_started's `attacks`), then its cascade order;
        a run recorded before `attacks` was sent: the paper's attacks it has figures for, then its order."""
        if self.configured:
            return list(dict.fromkeys([*self.configured, *self.order]))
        seen = {m.attack for m in self.measures if m.setting in ("whitebox", "blackbox")}
        return list(dict.fromkeys([*(a for a in PAPER_ATTACKS if a in seen), *self.order]))

    def error_columns(self) -> list[tuple[str, str]]:
        """(setting, attack) columns of the error matrix, from the run's own figures: clean, each setting's
        attacks in `attacks()` order, and for union rows the threat models and their union."""
        present = {(m.setting, m.attack) for m in self.measures if m.metric == "error_rate"}
        columns = [("clean", "none")]
        for setting in MATRIX_SETTINGS:
            names = UNION_COLUMNS if setting == "union" else self.attacks()
            columns += [(setting, a) for a in names if (setting, a) in present]
        return columns

    def chain(self, name: str) -> list[str]:
        """The training steps that led to step `name`, oldest first (a cascade's stages from M0): follow
        the first `needs` entry that is a training step."""
        out: list[str] = []
        current = self.steps.get(name)
        while current is not None and current.name not in out:
            if current.kind == "train":
                out.append(current.name)
            current = next(
                (self.steps[n] for n in current.needs if n in self.steps and self.steps[n].kind == "train"),
                None,
            )
        return out[::-1]

    def evaluators(self, trained: str) -> list[str]:
        """Evaluation steps whose model is the training step `trained`."""
        return [s.name for s in self.steps.values() if s.kind == "evaluate" and trained in s.needs]
