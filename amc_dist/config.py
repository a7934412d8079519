"""The one typed config schema: every hyperparameter of a run, validated before any work starts.

YAML files in `configs/` are data; `load_config` validates them (and `--set key=value` overrides) and
raises `ConfigError` naming the file and the dotted key of the first bad value.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializeAsAny,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)


class ConfigError(ValueError):
    """A config file or override that does not validate; the message names the source and key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(Strict):
    name: str = Field("mnist", description="mnist | cifar10 | svhn | stl10, or a path to the user's own data")
    root: str | None = Field(
        None, description="local path or fsspec URL; default $AMC_DATA or ~/.cache/amc-dist"
    )
    train_subset: int | None = Field(None, ge=1, description="use only the first N training images (demos)")
    split_seed: int = Field(0, description="seed of the class-balanced validation/attack/test split")
    augment: bool = Field(True, description="shifts (SVHN, CIFAR-10) and flips (CIFAR-10) while training")


class ModelConfig(Strict):
    target: str = Field("lenet", description="model name or 'package.module:factory'")
    proxy: str = Field("proxy_cnn", description="the attacker's proxy architecture")
    target_kwargs: dict[str, Any] = Field(default_factory=dict)
    proxy_kwargs: dict[str, Any] = Field(default_factory=dict)


class TrainingConfig(Strict):
    """How one model is fitted: the undefended target, a baseline or one cascade stage."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["adam", "sgd"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["constant", "cosine"] = "constant"
    alpha: float = Field(
        0.5, ge=0, le=1, description="weight of the clean loss J(x): alpha*J(x) + (1-alpha)*..."
    )
    eval_size: int = Field(1000, ge=1, description="validation images scored after every epoch")


class CascadeConfig(Strict):
    """The AMC cascade of the paper's Algorithm 2 with its 'forgetting attacks' mixture."""

    order: list[str] = Field(default_factory=lambda: ["fgsm", "vat", "ead", "pgd"], min_length=1)
    newest_share: float = Field(
        0.8, ge=0, le=1, description="share of the perturbed batch from the newest attack"
    )
    lambdas: Literal["mixture"] | list[float] = Field(
        "mixture",
        description="'mixture': each attack's loss weighted by its share of the perturbed batch (what the "
        "paper's code did); or one weight per attack of `order`, each in [0, 1], summing to 1",
    )
    epochs_per_stage: int = Field(2, ge=1)
    parameter_transfer: bool = True

    @field_validator("order")
    @classmethod
    def _known_distinct_attacks(cls, order: list[str]) -> list[str]:
        from amc_dist.attacks import attack_key

        names = [attack_key(name) for name in order]
        if len(set(names)) != len(names):
            raise ValueError(f"attacks repeat in the order {order}")
        return names

    @model_validator(mode="after")
    def _lambdas_match_order(self) -> CascadeConfig:
        if isinstance(self.lambdas, list):
            if len(self.lambdas) != len(self.order):
                raise ValueError(
                    f"lambdas has {len(self.lambdas)} weights for {len(self.order)} attacks in order"
                )
            if any(not 0 <= w <= 1 for w in self.lambdas):
                raise ValueError(f"lambdas must each lie in [0, 1], got {self.lambdas}")
            if not math.isclose(sum(self.lambdas), 1.0, abs_tol=1e-6):
                raise ValueError(f"lambdas must sum to 1, got {sum(self.lambdas):.6g}")
        return self


class ProxyConfig(Strict):
    """The black-box attacker: proxies P' and P'' trained on its own data, labelled by the oracle."""

    interface: Literal["label", "noisy_label", "probability"] = "label"
    label_noise: float = Field(0.1, ge=0, lt=1, description="label smoothing mass for 'noisy_label'")
    n_samples: int | None = Field(None, ge=1, description="attacker images queried; None = all proxy data")
    query_budget: int | None = Field(
        None,
        ge=1,
        description="oracle queries an attacker's whole campaign may spend (P' and all its re-fits share "
        "one; each adaptive P'' has its own); None = unlimited",
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig)


class SqueezeConfig(Strict):
    bit_depth: int | None = Field(1, ge=1, le=8)
    median_window: int | None = Field(None, ge=2, le=5)


# An attack's own typed parameters (`amc_dist.attacks`, e.g. PGDParams), resolved from the raw YAML mapping
# when the config loads. Typed as their pydantic base here, so reading a config never imports torch.
AttackParams = SerializeAsAny[BaseModel]


def _typed_attack(kind: str, raw: Any, key: str | None = None) -> BaseModel:
    """Attack `kind`'s typed parameters from a raw mapping (None: all defaults). A bad value raises a
    ValidationError located below the field, and below the entry's `key` in a section, so the message
    names e.g. `attacks.whitebox.pgd.eps` (or `attacks.whitebox.pgd_l2.eps` for an instance)."""
    from amc_dist.attacks import params_class

    cls = params_class(kind)
    if isinstance(raw, cls):
        return raw
    try:
        return cls.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        where = () if key is None else (key,)
        located = [
            {**{k: e[k] for k in ("type", "input", "ctx") if k in e}, "loc": (*where, *e["loc"])}
            for e in exc.errors()
        ]
        raise ValidationError.from_exception_data(exc.title, located) from None


_STRONG_PGD = {"eps": 0.3, "eps_iter": 0.01, "nb_iter": 40, "rand_init": True}


class AttacksConfig(Strict):
    """Each attack's typed parameters (Cleverhans names), resolved once when the config loads: the paper's
    Table 1 for the white-box and black-box settings, the strong PGD and APGD of the worst-case report.
    Advisory warnings (e.g. a PGD that cannot reach its eps) are given here, once, not where attacks run."""

    whitebox: dict[str, AttackParams] = Field(
        default_factory=dict,
        description="Table 1, white-box: {attack: parameters}; attacks by our name or the paper's (PGM), "
        "or instances of one with their kind ({pgd_l2: {kind: pgd, ord: 2, eps: 2.0}})",
    )
    blackbox: dict[str, AttackParams] = Field(
        default_factory=dict, description="Table 1, black-box: {attack: parameters}, crafted on the proxy"
    )
    strong_pgd: AttackParams = Field(
        default_factory=lambda: dict(_STRONG_PGD),
        validate_default=True,
        description="PGD parameters of the standard strong PGD every model is also reported under, at the "
        "dataset's standard budget",
    )
    apgd: AttackParams = Field(
        default_factory=dict,
        validate_default=True,
        description="APGD parameters of the worst case's suite (APGD-CE and APGD-T, so `loss` is not set "
        "here) at strong_pgd's budget: eps and ord default to strong_pgd's and must equal them; seed "
        "defaults to 0, so a report repeats itself",
    )
    apgd_targets: int | None = Field(
        None, ge=1, description="the worst case's APGD-T target classes; None = AutoAttack's 9 (5 under L1)"
    )
    square_queries: int = Field(
        5000, ge=1, description="the worst case's Square queries after the first (AutoAttack's 5000)"
    )

    @field_validator("whitebox", "blackbox", mode="before")
    @classmethod
    def _typed_sections(cls, sections: Any) -> Any:
        from amc_dist.attacks import attack_key, split_kind

        if not isinstance(sections, dict):
            return sections  # pydantic names the type error
        resolved: dict[str, BaseModel] = {}
        given: dict[str, str] = {}
        for name, params in sections.items():
            key = attack_key(name)
            if key in given:
                raise ValueError(f"{given[key]} and {name} are the same attack ({key}): configure it once")
            given[key] = name
            if isinstance(params, BaseModel):
                resolved[key] = params
            elif params is None or isinstance(params, dict):
                kind, raw = split_kind(name, params)
                resolved[key] = _typed_attack(kind, raw, key)
            else:  # not a mapping: pydantic names the type error (an instance's kind is unknowable)
                resolved[key] = _typed_attack(split_kind(name, None)[0], params, key)
        return resolved

    @field_serializer("whitebox", "blackbox")
    def _sections_with_kinds(
        self, sections: dict[str, BaseModel], info: SerializationInfo
    ) -> dict[str, dict[str, Any]]:
        """Each entry's parameters, an instance's with its `kind`, so a written config reads back."""
        from amc_dist.attacks import is_kind, kind_of

        return {
            name: (params.model_dump(mode=info.mode) | ({} if is_kind(name) else {"kind": kind_of(params)}))
            for name, params in sections.items()
        }

    @field_validator("strong_pgd", mode="before")
    @classmethod
    def _typed_strong_pgd(cls, params: Any) -> BaseModel:
        return _typed_attack("pgd", params)

    @field_validator("apgd", mode="before")
    @classmethod
    def _typed_apgd(cls, params: Any) -> BaseModel:
        if isinstance(params, dict) and "loss" in params:
            raise ValueError("the worst case runs APGD-CE and APGD-T (targeted DLR): leave `loss` out")
        return _typed_attack("apgd", params)

    @model_validator(mode="before")
    @classmethod
    def _apgd_budget_from_strong_pgd(cls, data: Any) -> Any:
        """APGD's eps and ord default to the strong PGD's (given, or the default strong PGD's), its seed
        to 0."""
        if not isinstance(data, dict) or not isinstance(data.get("apgd") or {}, dict):
            return data
        apgd = dict(data.get("apgd") or {})
        apgd.setdefault("seed", 0)
        strong = data.get("strong_pgd")
        for key in ("eps", "ord"):
            if key in apgd:
                continue
            if isinstance(strong, dict):
                value = strong.get(key, _STRONG_PGD.get(key)) if strong else _STRONG_PGD.get(key)
            else:
                value = getattr(strong, key, None) if strong is not None else _STRONG_PGD.get(key)
            if value is not None:
                apgd[key] = value
        return {**data, "apgd": apgd}

    @field_serializer("apgd")
    def _apgd_without_loss(self, apgd: BaseModel, info: SerializationInfo) -> dict[str, Any]:
        return apgd.model_dump(mode=info.mode, exclude={"loss"})

    @model_validator(mode="after")
    def _one_budget_and_advice(self) -> AttacksConfig:
        from amc_dist.attacks import warn_advice

        strong, apgd = self.strong_pgd, self.apgd
        if (apgd.eps, apgd.ord) != (strong.eps, strong.ord):
            raise ValueError(
                f"apgd's budget (eps {apgd.eps:g}, ord {apgd.ord:g}) differs from strong_pgd's (eps "
                f"{strong.eps:g}, ord {strong.ord:g}): the worst case is taken at one budget, set both"
            )
        for setting in ("whitebox", "blackbox"):
            for name, params in getattr(self, setting).items():
                warn_advice(f"attacks.{setting}.{name}", params)
        warn_advice("attacks.strong_pgd", strong)
        return self


class ExperimentConfig(Strict):
    """Which models the experiment trains and how they are evaluated (the paper's Tables 2-6)."""

    variants: list[Literal["target_hardened", "local_proxy", "no_transfer", "leave_one_out"]] = Field(
        default_factory=lambda: ["target_hardened", "local_proxy", "no_transfer", "leave_one_out"]
    )
    baselines: bool = Field(True, description="single-attack AT and proxy-based AT for every attack")
    baseline_epochs: int | None = Field(
        None, ge=1, description="epochs of each AT baseline; None = the cascade's total (equal budget)"
    )
    leave_out: str = Field("fgsm", description="the attack the leave-one-out cascade never sees (Table 6)")
    adversarial_subset: int | None = Field(
        None,
        ge=1,
        description="every adversarial training (AT baselines, cascade stages, union rows) uses only the "
        "first N of the training images M0 trained on (demos: M0 sees more data than the costlier "
        "adversarial stages); None = all",
    )
    eval_size: int | None = Field(None, ge=1, description="attack-split images per evaluation; None = all")

    @field_validator("leave_out")
    @classmethod
    def _known_attack(cls, name: str) -> str:
        from amc_dist.attacks import attack_key

        return attack_key(name)


class RunConfig(Strict):
    output: str = Field("runs", description="local directory or fsspec URL holding runs/<run_id>/")
    run_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$", description="auto | cpu | cuda | cuda:N | mps"
    )
    s3_endpoint: str | None = Field(
        None,
        description="endpoint URL of an S3-compatible store for s3:// outputs; default $AWS_ENDPOINT_URL "
        "(credentials come only from the standard AWS variables, never from a config)",
    )


class RayConfig(Strict):
    """How `python -m amc_dist.launch` spreads the steps over a Ray cluster (`amc run` ignores it)."""

    num_workers: int = Field(1, ge=1, description="Ray Train workers (DDP ranks) per model training")
    use_gpu: bool = Field(
        False, description="a GPU (or gpus_per_worker of one) per Train worker and other step"
    )
    gpus_per_worker: float = Field(
        1.0,
        gt=0,
        le=1,
        description="with use_gpu, the share of a GPU each Train worker and other step holds: below 1, small "
        "models' steps share a GPU (0.2: five at once on one card); one worker per step then",
    )
    actor_gpus: float = Field(
        0.25,
        ge=0,
        le=1,
        description="with use_gpu, the share of a GPU each oracle and proxy actor holds while the step that "
        "needs it runs (0: actors on the CPU); the launch refuses shares that cannot be held at once",
    )
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs per Train worker and per other step")
    max_concurrent_steps: int | None = Field(
        None, ge=1, description="steps running at once; None = as many as the cluster has CPUs"
    )
    trainer: Literal["auto", "train", "task"] = Field(
        "auto",
        description="'train': every model training is a Ray Train TorchTrainer fit; 'task': a plain Ray "
        "task running the same fit() (one worker); 'auto': a task for one CPU worker, Ray Train for "
        "several workers or GPUs (docs/benchmarks.md: a task saves Train's fixed cost on short steps)",
    )

    @model_validator(mode="after")
    def _workers_fit_their_trainer(self) -> RayConfig:
        if self.trainer == "task" and self.num_workers > 1:
            raise ValueError("trainer 'task' runs one worker: use 'train' for several workers")
        if self.use_gpu and self.num_workers > 1 and self.gpus_per_worker < 1:
            raise ValueError("the ranks of one training cannot share a GPU (NCCL): gpus_per_worker must be 1")
        return self


STRATEGY_NAMES = ("avg", "max", "msd", "eat", "amc_union")


class UnionRow(Strict):
    """One union-robust model of the comparison: a strategy, its training attacks and where it starts."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the row's name (its steps: union.<name>)")
    strategy: Literal["avg", "max", "msd", "eat", "amc_union"] = Field(
        description="avg | max (Tramer & Boneh) | msd (Maini et al.) | eat (Croce & Hein) | amc_union (the "
        "cascade over `attacks` in order, with cascade.newest_share, lambdas and parameter_transfer)"
    )
    attacks: list[str] | None = Field(None, min_length=1, description="training attacks; None = strategies'")
    epochs: int = Field(1, ge=1, description="training epochs (amc_union: per stage)")
    start: str = Field(
        "target",
        description="'scratch' (fresh weights), 'target' (M0) or an earlier row's name (a fine-tune)",
    )
    alpha: float | None = Field(None, ge=0, le=1, description="clean-loss weight; None = strategies.alpha")

    @field_validator("attacks")
    @classmethod
    def _attack_keys(cls, attacks: list[str] | None) -> list[str] | None:
        from amc_dist.attacks import attack_key

        return None if attacks is None else [attack_key(a) for a in attacks]


class StrategiesConfig(Strict):
    """Union-robust rows beside (or, with `only`, instead of) the paper's: each row trains with its strategy
    on the true labels, is charged its cost (its start's included) and gets the union evaluation alone."""

    attacks: list[str] = Field(
        default_factory=list,
        description="the union's training attacks, one per threat model (attacks.whitebox)",
    )
    alpha: float = Field(0.0, ge=0, le=1, description="clean-loss weight of every row (0: adversarial only)")
    ramp_epochs: int = Field(0, ge=0, description="epochs over which Linf training budgets ramp up (0: none)")
    rows: list[UnionRow] = Field(default_factory=list)
    only: bool = Field(
        False, description="train M0 and the union rows only: no paper rows, proxies or tables"
    )
    threats: dict[str, Any] = Field(
        default_factory=dict,
        description="union evaluation budgets and strength (evaluation.union.UnionThreats)",
    )
    eval_images: int = Field(1000, ge=1, description="test-split images of each row's union evaluation")
    check_images: int = Field(200, ge=1, description="validation images of the per-epoch collapse check")
    check_iter: int = Field(20, ge=1, description="APGD-CE iterations of the per-epoch collapse check")
    check_gap: float = Field(
        0.3,
        gt=0,
        le=1,
        description="a training attack whose robust accuracy exceeds APGD's by more than this has collapsed "
        "(or the model masks it): the step stops",
    )

    @field_validator("attacks")
    @classmethod
    def _attack_keys(cls, attacks: list[str]) -> list[str]:
        from amc_dist.attacks import attack_key

        return [attack_key(a) for a in attacks]

    @model_validator(mode="after")
    def _rows_consistent(self) -> StrategiesConfig:
        seen: list[str] = []
        for row in self.rows:
            if row.name in seen:
                raise ValueError(f"row {row.name!r} is declared twice")
            if row.start not in ("scratch", "target", *seen):
                raise ValueError(f"row {row.name!r} starts from {row.start!r}: not 'scratch', 'target' or an "
                                 f"earlier row")  # fmt: skip
            if not (row.attacks or self.attacks):
                raise ValueError(f"row {row.name!r} has no training attacks: set strategies.attacks")
            seen.append(row.name)
        return self

    def attacks_of(self, row: UnionRow) -> list[str]:
        return row.attacks or self.attacks


class Config(Strict):
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    attacks: AttacksConfig = Field(default_factory=AttacksConfig)
    squeeze: SqueezeConfig = Field(default_factory=SqueezeConfig)
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    strategies: StrategiesConfig = Field(default_factory=StrategiesConfig)

    @model_validator(mode="after")
    def _gpu_steps_get_gpu_tensors(self) -> Config:
        """With `ray.use_gpu` every step runs in a process that sees only its own GPU, as cuda:0, and
        Train's process group is NCCL, which takes CUDA tensors only."""
        device = self.run.device
        if self.ray.use_gpu and device in ("cpu", "mps"):
            raise ValueError(
                f"ray.use_gpu is true but run.device is {device}: set run.device to auto or cuda"
            )
        if self.ray.use_gpu and device.startswith("cuda:") and device != "cuda:0":
            raise ValueError(
                f"run.device {device} with ray.use_gpu: a Ray step sees only the GPU it reserved, as "
                "cuda:0; set run.device to auto or cuda"
            )
        return self

    @model_validator(mode="after")
    def _cascade_attacks_configured(self) -> Config:
        s = self.strategies
        for row in s.rows:
            missing = [name for name in s.attacks_of(row) if name not in self.attacks.whitebox]
            if missing:
                raise ValueError(f"strategies row {row.name!r} trains with {missing}: no section under "
                                 "attacks.whitebox")  # fmt: skip
            lambdas = self.cascade.lambdas
            if (
                row.strategy == "amc_union"
                and lambdas != "mixture"
                and len(lambdas) != len(s.attacks_of(row))
            ):
                raise ValueError(f"cascade.lambdas has {len(lambdas)} weights for row {row.name!r}'s "
                                 f"{len(s.attacks_of(row))} stages")  # fmt: skip
        if s.only:
            return self
        for setting in ("whitebox", "blackbox"):
            missing = [name for name in self.cascade.order if name not in getattr(self.attacks, setting)]
            if missing:
                raise ValueError(f"cascade.order names {missing} with no section under attacks.{setting}")
        if "leave_one_out" in self.experiment.variants:
            if self.experiment.leave_out not in self.cascade.order:
                raise ValueError(
                    f"experiment.leave_out {self.experiment.leave_out!r} is not in cascade.order"
                )
            if len(self.cascade.order) < 2:
                raise ValueError("leave_one_out needs at least two attacks in cascade.order")
        return self


def describe_error(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{source}: {key}: {message}{more}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b.c=value' into the key path and the YAML-typed value."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"--set {text!r}: expected key.path=value")
    return key.strip().split("."), yaml.safe_load(value) if value.strip() else None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    merged = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return merged


def validate_config(raw: dict[str, Any], source: str = "config") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, source)) from None


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's data (safe_load; empty = {}), or ConfigError saying why it cannot be had."""
    try:
        return yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (safe_load), apply `key=value` overrides and validate.

    Raises ConfigError naming the file and the dotted key of the first bad value.
    """
    path = Path(path)
    raw = read_yaml(path, "config")
    source = str(path)
    if overrides:
        raw = apply_overrides(raw if isinstance(raw, dict) else {}, overrides)
        source = f"{path} with --set {' '.join(overrides)}"
    return validate_config(raw, source)
