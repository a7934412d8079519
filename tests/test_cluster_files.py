"""The cluster definitions in cluster/, checked as their consumers check them.

- cluster/aws.yaml by Ray's own cluster-launcher validator (`validate_config(fillout_defaults(cfg))`),
  which must also reject a bogus key (so it really ran), and after Ray's full merge of its defaults: token
  auth on every `ray start`, the dashboard on 127.0.0.1, GPU worker types, a pinned torch CUDA build.
- cluster/kuberay/*.yaml against the fields, types and rules of KubeRay's ray.io/v1 CRDs and its
  validation webhook (ray-operator/apis/ray/v1/*_types.go, ray-operator/controllers/ray/utils/validation.go
  in ray-project/kuberay, read for this): `kuberay_problems` below, which must also catch broken copies.
- Every file: nothing listens on 0.0.0.0 unless that line says it is configurable; no secret literal;
  the ConfigMap's experiment validates with our own schema and is the paper's MNIST config.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from amc_dist.config import ConfigError, validate_config
from amc_dist.distributed.admission import check_gpus
from amc_dist.experiment.plan import build_graph
from amc_dist.experiment.sweep import load_sweep
from amc_dist.tune import build_parser as tune_parser

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
KUBERAY = sorted((CLUSTER / "kuberay").glob("*.yaml"))
RAY_VERSION = "2.60.0"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _ray_objects(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, d) for p in KUBERAY for d in _documents(p) if d.get("kind") == kind]


# ---------------------------------------------------------------------------------------------------------
# KubeRay's rules


DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}
GPU = "nvidia.com/gpu"


def _is_int(value: Any) -> bool:
    return type(value) is int  # YAML booleans are ints to isinstance


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _pod_problems(where: str, template: Any) -> list[str]:
    """A PodTemplateSpec as Kubernetes and KubeRay need it: containers with a name and an image, env
    entries with a value or a valueFrom, GPU limits equal to requests, mounts of declared volumes."""
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return [f"{where}.template.spec is required"]
    spec = template["spec"]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [f"{where}: at least one container is required"]
    problems = []
    volumes = {v.get("name") for v in spec.get("volumes", [])}
    for i, c in enumerate(containers):
        at = f"{where}.containers[{i}]"
        if not isinstance(c.get("name"), str) or not DNS1123.match(c["name"]):
            problems.append(f"{at}.name must be a DNS-1123 label")
        if not isinstance(c.get("image"), str) or not c["image"]:
            problems.append(f"{at}.image is required")
        for e in c.get("env", []):
            if not isinstance(e.get("name"), str):
                problems.append(f"{at}.env: every entry needs a name")
            elif ("value" in e) == ("valueFrom" in e):
                problems.append(f"{at}.env {e['name']}: exactly one of value and valueFrom")
            elif "value" in e and not isinstance(e["value"], str):
                problems.append(f"{at}.env {e['name']}: value must be a string")
        resources = c.get("resources", {})
        for part in ("requests", "limits"):
            for name, q in resources.get(part, {}).items():
                if not isinstance(q, str | int) or isinstance(q, bool):
                    problems.append(f"{at}.resources.{part}.{name} must be a quantity")
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        if GPU in requests and requests[GPU] != limits.get(GPU):
            problems.append(f"{at}: {GPU} requests need equal limits")
        for port in c.get("ports", []):
            if not _is_int(port.get("containerPort")):
                problems.append(f"{at}.ports: containerPort must be an integer")
        for mount in c.get("volumeMounts", []):
            if mount.get("name") not in volumes:
                problems.append(f"{at}.volumeMounts: no volume named {mount.get('name')!r}")
    return problems


def _cluster_spec_problems(where: str, spec: Any) -> list[str]:
    """RayClusterSpec: headGroupSpec (template required; rayStartParams a map of strings), worker groups
    (groupName, integer min/maxReplicas, 0 <= min <= replicas <= max), authOptions (token needs Ray >=
    2.52.0 in rayVersion)."""
    if not isinstance(spec, dict):
        return [f"{where} must be a mapping"]
    head = spec.get("headGroupSpec")
    if not isinstance(head, dict):
        return [f"{where}.headGroupSpec is required"]
    problems = []
    if "rayStartParams" in head and not _is_str_map(head["rayStartParams"]):
        problems.append(f"{where}.headGroupSpec.rayStartParams must map strings to strings")
    problems += _pod_problems(f"{where}.headGroupSpec", head.get("template"))
    groups = spec.get("workerGroupSpecs", [])
    if not isinstance(groups, list):
        return [*problems, f"{where}.workerGroupSpecs must be a list"]
    for i, g in enumerate(groups):
        at = f"{where}.workerGroupSpecs[{i}]"
        if not isinstance(g.get("groupName"), str) or not g["groupName"]:
            problems.append(f"{at}.groupName is required")
        counts = {key: g.get(key) for key in ("minReplicas", "maxReplicas")}
        if not all(_is_int(v) for v in counts.values()):
            problems.append(f"{at}: minReplicas and maxReplicas are required integers")
            continue
        replicas = g.get("replicas", counts["minReplicas"])
        if not _is_int(replicas):
            problems.append(f"{at}.replicas must be an integer")
        elif not 0 <= counts["minReplicas"] <= replicas <= counts["maxReplicas"]:
            problems.append(f"{at}: needs 0 <= minReplicas <= replicas <= maxReplicas")
        if "rayStartParams" in g and not _is_str_map(g["rayStartParams"]):
            problems.append(f"{at}.rayStartParams must map strings to strings")
        problems += _pod_problems(at, g.get("template"))
    auth = spec.get("authOptions")
    if auth is not None:
        if auth.get("mode", "token") not in ("disabled", "token"):
            problems.append(f"{where}.authOptions.mode must be 'disabled' or 'token'")
        elif auth.get("mode", "token") == "token":
            version = spec.get("rayVersion")
            if not isinstance(version, str) or _version(version) < (2, 52, 0):
                problems.append(f"{where}: authOptions.mode token needs rayVersion >= 2.52.0")
    if "enableInTreeAutoscaling" in spec and not isinstance(spec["enableInTreeAutoscaling"], bool):
        problems.append(f"{where}.enableInTreeAutoscaling must be a boolean")
    return problems


def kuberay_problems(doc: dict[str, Any]) -> list[str]:
    """What KubeRay (CRD schema and validation webhook) would reject in a RayCluster or RayJob."""
    if doc.get("apiVersion") != "ray.io/v1":
        return [f"apiVersion must be ray.io/v1, got {doc.get('apiVersion')!r}"]
    kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
    longest = {"RayCluster": 53, "RayJob": 47}.get(kind)
    if longest is None:
        return [f"kind must be RayCluster or RayJob, got {kind!r}"]
    problems = []
    if not isinstance(name, str) or not DNS1035.match(name) or len(name) > longest:
        problems.append(f"metadata.name must be a DNS-1035 label of at most {longest} characters")
    spec = doc.get("spec")
    if kind == "RayCluster":
        return problems + _cluster_spec_problems("spec", spec)
    if not isinstance(spec, dict):
        return [*problems, "spec is required"]
    if not isinstance(spec.get("entrypoint"), str) or not spec["entrypoint"].strip():
        problems.append("spec.entrypoint must be a non-empty string")
    if "runtimeEnvYAML" in spec:
        try:
            env = yaml.safe_load(spec["runtimeEnvYAML"]) if isinstance(spec["runtimeEnvYAML"], str) else None
        except yaml.YAMLError:
            env = None
        if not isinstance(env, dict):
            problems.append("spec.runtimeEnvYAML must be a string holding a YAML mapping")
    mode = spec.get("submissionMode", "K8sJobMode")
    if mode not in SUBMISSION_MODES:
        problems.append(f"spec.submissionMode must be one of {sorted(SUBMISSION_MODES)}")
    shutdown = spec.get("shutdownAfterJobFinishes", False)
    if not isinstance(shutdown, bool):
        problems.append("spec.shutdownAfterJobFinishes must be a boolean")
    if "ttlSecondsAfterFinished" in spec:
        ttl = spec["ttlSecondsAfterFinished"]
        if not _is_int(ttl) or ttl < 0:
            problems.append("spec.ttlSecondsAfterFinished must be a non-negative integer")
        elif not shutdown:
            problems.append("spec.ttlSecondsAfterFinished needs shutdownAfterJobFinishes: true")
    if "backoffLimit" in spec and (not _is_int(spec["backoffLimit"]) or spec["backoffLimit"] < 0):
        problems.append("spec.backoffLimit must be a non-negative integer")
    if ("rayClusterSpec" in spec) == bool(spec.get("clusterSelector")):
        return [*problems, "spec needs exactly one of rayClusterSpec and clusterSelector"]
    if "rayClusterSpec" in spec:
        problems += _cluster_spec_problems("spec.rayClusterSpec", spec["rayClusterSpec"])
        head = spec["rayClusterSpec"].get("headGroupSpec", {}).get("template", {}).get("spec", {})
        if mode == "SidecarMode" and head.get("restartPolicy", "Never") != "Never":
            problems.append("SidecarMode needs the head pod's restartPolicy unset or Never")
    return problems


def _cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _cluster_spec(doc)
    groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


# ---------------------------------------------------------------------------------------------------------
# cluster/aws.yaml


@pytest.fixture(scope="module")
def launcher():
    return yaml.safe_load((CLUSTER / "aws.yaml").read_text())


def test_the_launcher_yaml_passes_rays_own_validator(launcher):
    from ray.autoscaler._private.util import fillout_defaults
    from ray.autoscaler._private.util import validate_config as ray_validate

    ray_validate(fillout_defaults(copy.deepcopy(launcher)))
    bogus = copy.deepcopy(launcher)
    bogus["bogus_key"] = 1
    with pytest.raises(jsonschema.ValidationError, match="'bogus_key' was unexpected"):
        ray_validate(fillout_defaults(bogus))
    no_resources = copy.deepcopy(launcher)
    del no_resources["available_node_types"]["gpu_1x_a10g"]["resources"]
    with pytest.raises(jsonschema.ValidationError, match="'resources' is a required property"):
        ray_validate(fillout_defaults(no_resources))


def test_the_launcher_starts_ray_with_token_auth_and_the_dashboard_on_loopback(launcher):
    from ray.autoscaler._private.util import prepare_config

    merged = prepare_config(copy.deepcopy(launcher))  # what `ray up` runs, Ray's defaults merged in
    head, workers = merged["head_start_ray_commands"], merged["worker_start_ray_commands"]
    for command in [c for c in head + workers if "ray start" in c]:
        before = command[: command.index("ray start")]
        assert "RAY_AUTH_MODE=token" in before and "RAY_AUTH_TOKEN_PATH=$HOME/.ray-amc/auth_token" in before
        assert ". $HOME/.ray-amc/aws.env" in before  # S3 keys from the copied file, never inline
    [start_head] = [c for c in head if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in start_head and "0.0.0.0" not in start_head
    # the token and the keys travel as one directory, copied over SSH
    assert merged["file_mounts"]["/home/ray/.ray-amc"] == "~/.ray-amc/aws"
    assert any("chmod 600 ~/.ray-amc/auth_token ~/.ray-amc/aws.env" in c for c in merged["setup_commands"])


def test_the_launcher_has_gpu_workers_and_installs_this_package_on_a_pinned_torch(launcher):
    types = launcher["available_node_types"]
    workers = {name: t for name, t in types.items() if name != launcher["head_node_type"]}
    assert workers and all(
        t["node_config"]["InstanceType"].startswith(("g5.", "p4d.")) for t in workers.values()
    )
    assert sum(t["max_workers"] for t in workers.values()) >= launcher["max_workers"]
    setup = launcher["setup_commands"]
    torch = next(c for c in setup if '"torch==' in c)
    assert '"torch==2.13.0"' in torch and "--index-url https://download.pytorch.org/whl/cu" in torch
    install = setup[-1]
    assert "-c ~/torch-constraint.txt" in install and "-e ~/amc-dist" in install
    assert f'"ray[default,train,tune]=={RAY_VERSION}"' in install
    assert launcher["docker"]["image"] == f"rayproject/ray:{RAY_VERSION}-py311-gpu"


# ---------------------------------------------------------------------------------------------------------
# cluster/kuberay/


def test_the_kuberay_manifests_are_what_kuberay_accepts():
    objects = _ray_objects("RayCluster") + _ray_objects("RayJob")
    assert {kind for _, d in objects for kind in [d["kind"]]} == {"RayCluster", "RayJob"}
    for name, doc in objects:
        assert kuberay_problems(doc) == [], name


BREAKAGES = {
    "rayStartParams with a number": (
        lambda d: _cluster_spec(d)["headGroupSpec"]["rayStartParams"].update({"num-gpus": 0}),
        "rayStartParams must map strings to strings",
    ),
    "no minReplicas": (
        lambda d: _cluster_spec(d)["workerGroupSpecs"][0].pop("minReplicas"),
        "minReplicas and maxReplicas are required integers",
    ),
    "replicas above max": (
        lambda d: _cluster_spec(d)["workerGroupSpecs"][0].update({"replicas": 99}),
        "minReplicas <= replicas <= maxReplicas",
    ),
    "token auth without rayVersion": (
        lambda d: _cluster_spec(d).pop("rayVersion"),
        "needs rayVersion >= 2.52.0",
    ),
    "GPU requested without a limit": (
        lambda d: _cluster_spec(d)["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"][
            "limits"
        ].pop(GPU),
        "requests need equal limits",
    ),
    "no image": (
        lambda d: _cluster_spec(d)["headGroupSpec"]["template"]["spec"]["containers"][0].pop("image"),
        "image is required",
    ),
    "a mount of no volume": (
        lambda d: _cluster_spec(d)["headGroupSpec"]["template"]["spec"].pop("volumes"),
        "no volume named",
    ),
}
JOB_BREAKAGES = {
    "runtimeEnvYAML not YAML": (
        lambda d: d["spec"].update({"runtimeEnvYAML": "env_vars: [a"}),
        "runtimeEnvYAML",
    ),
    "ttl without shutdown": (
        lambda d: d["spec"].update({"shutdownAfterJobFinishes": False}),
        "needs shutdownAfterJobFinishes: true",
    ),
    "entrypoint as a list": (lambda d: d["spec"].update({"entrypoint": ["python"]}), "entrypoint"),
    "a name too long": (lambda d: d["metadata"].update({"name": "a" * 48}), "at most 47 characters"),
}


@pytest.mark.parametrize("breakage", [*BREAKAGES, *JOB_BREAKAGES])
def test_the_checker_rejects_broken_copies(breakage):
    breakages = BREAKAGES | JOB_BREAKAGES
    break_it, message = breakages[breakage]
    kinds = ["RayJob"] if breakage in JOB_BREAKAGES else ["RayCluster", "RayJob"]
    for kind in kinds:
        for name, doc in _ray_objects(kind):
            broken = copy.deepcopy(doc)
            break_it(broken)
            assert any(message in p for p in kuberay_problems(broken)), (name, kuberay_problems(broken))


def test_every_cluster_has_token_auth_and_a_gpu_worker_group():
    for name, doc in _ray_objects("RayCluster") + _ray_objects("RayJob"):
        spec = _cluster_spec(doc)
        assert spec["authOptions"] == {"mode": "token"} and spec["rayVersion"] == RAY_VERSION, name
        gpus = [
            c["resources"]["limits"][GPU]
            for g in spec["workerGroupSpecs"]
            for c in g["template"]["spec"]["containers"]
            if GPU in c.get("resources", {}).get("limits", {})
        ]
        assert gpus and all(_is_int(n) and n >= 1 for n in gpus), name
        # KubeRay binds the dashboard to 0.0.0.0 unless told otherwise: every head says where
        assert spec["headGroupSpec"]["rayStartParams"]["dashboard-host"] in ("127.0.0.1", "0.0.0.0"), name


def test_s3_credentials_reach_every_ray_container_from_a_secret():
    for name, doc in _ray_objects("RayCluster") + _ray_objects("RayJob"):
        for container in _containers(doc):
            env = {e["name"]: e for e in container.get("env", [])}
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "amc-s3", "key": key}, (name, key)


def test_the_experiment_job_runs_the_launch_with_the_configmap_and_s3():
    [(_, job)] = [(n, d) for n, d in _ray_objects("RayJob") if "amc_dist.launch" in d["spec"]["entrypoint"]]
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:5] == ["python", "-m", "amc_dist.launch", "--config", "/config/experiment.yaml"]
    assert argv[5] == "--storage" and argv[6].startswith("s3://") and len(argv) == 7
    assert job["spec"]["shutdownAfterJobFinishes"] is True and _is_int(job["spec"]["ttlSecondsAfterFinished"])
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    [mount] = [m for m in head["containers"][0]["volumeMounts"] if m["mountPath"] == "/config"]
    [volume] = [v for v in head["volumes"] if v["name"] == mount["name"]]
    [configmap] = [d for d in _documents(CLUSTER / "kuberay" / "rayjob.yaml") if d["kind"] == "ConfigMap"]
    assert configmap["apiVersion"] == "v1" and volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert _is_str_map(configmap["data"]) and set(configmap["data"]) == {"experiment.yaml"}


def test_the_configmap_experiment_validates_and_is_the_papers_mnist():
    [configmap] = [d for d in _documents(CLUSTER / "kuberay" / "rayjob.yaml") if d["kind"] == "ConfigMap"]
    raw = yaml.safe_load(configmap["data"]["experiment.yaml"])
    config = validate_config(raw, "the ConfigMap's experiment.yaml")
    assert config.ray.use_gpu and config.ray.trainer == "train" and config.run.run_id
    paper = yaml.safe_load((ROOT / "configs" / "mnist.yaml").read_text())
    assert {k: v for k, v in raw.items() if k not in ("ray", "run")} == paper


def test_the_sweep_job_runs_the_tune_module():
    [(_, job)] = [(n, d) for n, d in _ray_objects("RayJob") if "amc_dist.tune" in d["spec"]["entrypoint"]]
    command = job["spec"]["entrypoint"].split()
    assert command[:3] == ["python", "-m", "amc_dist.tune"]
    args = tune_parser().parse_args(command[3:])  # the module takes these arguments...
    sweep = load_sweep(ROOT / args.config, args.overrides)  # ...and the sweep they name validates
    assert sweep.settings.storage.startswith("s3://")  # trials on several nodes need shared storage
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    assert env["working_dir"] == "/home/ray/amc-dist"  # where the image keeps the repository
    assert job["spec"]["shutdownAfterJobFinishes"] is True


def test_the_image_and_every_file_name_the_same_ray():
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{RAY_VERSION}-py311-gpu" in dockerfile
    assert f'"ray[default,train,tune]=={RAY_VERSION}"' in dockerfile and '"torch==2.13.0"' in dockerfile
    assert "WORKDIR /home/ray/amc-dist" in dockerfile
    images = {
        c["image"] for _, d in _ray_objects("RayCluster") + _ray_objects("RayJob") for c in _containers(d)
    }
    assert len(images) == 1  # head, workers and the sidecar submitter run the same build


# ---------------------------------------------------------------------------------------------------------
# every file


def _cluster_files() -> list[Path]:
    return sorted(p for p in CLUSTER.rglob("*") if p.is_file())


def binds_everywhere(text: str) -> list[str]:
    """Lines that listen on every interface without saying it is configurable."""
    return [line for line in text.splitlines() if "0.0.0.0" in line and "configurable" not in line]


SECRET_PATTERNS = {
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    "an AWS secret key": re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
    "a hex token": re.compile(r"\b[0-9a-f]{32,}\b"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "an inline secret value": re.compile(
        r"(?i)(secret|password|token|access_key)[A-Za-z_]*\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{16,}"
    ),
}


def secret_literals(text: str) -> list[str]:
    return [what for what, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def test_the_scanners_catch_what_they_look_for():
    assert binds_everywhere("dashboard-host: 0.0.0.0\nhost: 0.0.0.0  # configurable: see README") == [
        "dashboard-host: 0.0.0.0"
    ]
    assert secret_literals("value: AKIAIOSFODNN7EXAMPLE") == ["an AWS access key id"]
    assert "an AWS secret key" in secret_literals("key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert "a hex token" in secret_literals("RAY_AUTH_TOKEN=" + "ab12" * 16)
    assert "an inline secret value" in secret_literals("AWS_SECRET_ACCESS_KEY=abcdefghijklmnopqrstuv")
    assert secret_literals("valueFrom: {secretKeyRef: {name: amc-s3, key: AWS_SECRET_ACCESS_KEY}}") == []


@pytest.mark.parametrize("path", _cluster_files(), ids=lambda p: str(p.relative_to(CLUSTER)))
def test_no_file_binds_every_interface_or_holds_a_secret(path):
    text = path.read_text()
    assert binds_everywhere(text) == []
    assert secret_literals(text) == []
    assert "kind: Secret" not in text  # Secrets are made with kubectl from the user's own values


def _gpu_script_commands(**env: str) -> tuple[list[str], list[str]]:
    """The two commands cluster/full_mnist_gpu.sh would run (its DRY_RUN), as argument lists."""
    script = CLUSTER / "full_mnist_gpu.sh"
    run = subprocess.run(
        ["bash", str(script), "/out"],
        env={**os.environ, "DRY_RUN": "1", "PYTHON": "py", **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    launch, union = run.stdout.splitlines()
    return shlex.split(launch), shlex.split(union)


def _overrides(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]


@pytest.mark.parametrize("rehearsal", ["0", "1"])
def test_the_gpu_script_launches_the_full_mnist_config_and_then_its_union(rehearsal):
    from amc_dist.config import load_config

    launch, union = _gpu_script_commands(REHEARSAL=rehearsal)
    assert launch[:3] == ["py", "-m", "amc_dist.launch"] and "configs/mnist.yaml" in launch
    assert union[:4] == ["py", "-m", "amc_dist.cli", "union"]
    assert union[union.index("--run") + 1] == launch[launch.index("--storage") + 1] + "/mnist-full"
    config = load_config(ROOT / "configs" / "mnist.yaml", _overrides(launch))  # every override validates
    r = config.ray
    if rehearsal == "1":
        assert not r.use_gpu and config.data.train_subset == 300
        return
    assert config.data.train_subset is None and config.cascade.epochs_per_stage == 5  # full data, the paper's
    assert r.use_gpu and config.run.device == "cuda"
    # One card (16 CPUs, as the device has): what the steps at once can hold while waiting on their
    # actors fits it, so the launch's admission check lets it start.
    graph = build_graph(config)
    check_gpus(config, graph, list(graph.steps), [1.0], r.max_concurrent_steps)


def _manifest_nodes(cluster: dict[str, Any]) -> tuple[list[float], float]:
    """(GPUs of each node, CPUs in all) of a RayCluster spec, from its containers' limits."""
    head = cluster["headGroupSpec"]
    head_limits = head["template"]["spec"]["containers"][0]["resources"]["limits"]
    gpus = [float(head["rayStartParams"].get("num-gpus", head_limits.get(GPU, 0)))]
    cpus = float(head_limits["cpu"])
    for group in cluster["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        gpus += [float(limits.get(GPU, 0))] * group["replicas"]
        cpus += float(limits["cpu"]) * group["replicas"]
    return gpus, cpus


def test_the_experiment_job_passes_the_launchs_gpu_admission_check():
    from amc_dist.distributed.admission import holders

    [(_, job)] = [(n, d) for n, d in _ray_objects("RayJob") if "amc_dist.launch" in d["spec"]["entrypoint"]]
    [configmap] = [d for d in _documents(CLUSTER / "kuberay" / "rayjob.yaml") if d["kind"] == "ConfigMap"]
    config = validate_config(yaml.safe_load(configmap["data"]["experiment.yaml"]), "experiment.yaml")
    gpus, cpus = _manifest_nodes(job["spec"]["rayClusterSpec"])
    assert gpus == [0.0, 1.0, 1.0, 1.0, 1.0]
    r = config.ray
    cap = r.max_concurrent_steps or int(cpus // r.cpus_per_worker)  # as the launch takes it
    graph = build_graph(config)
    check_gpus(config, graph, list(graph.steps), gpus, cap)
    assert holders(config, graph, list(graph.steps), cap)  # actors on GPUs: the check had work to do
    defaults = config.model_copy(
        update={"ray": r.model_copy(update={"gpus_per_worker": 1.0, "actor_gpus": 0.25})}
    )
    with pytest.raises(ConfigError, match="do not fit the cluster"):  # what the job asked before
        check_gpus(defaults, graph, list(graph.steps), gpus, int(cpus // r.cpus_per_worker))


def test_the_gpu_script_refuses_a_budget_with_no_room_for_the_experiment():
    run = subprocess.run(
        ["bash", str(CLUSTER / "full_mnist_gpu.sh"), "/out"],
        env={"MINUTES": "2", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 2 and "MINUTES must be above 2" in run.stderr


def test_the_gpu_script_packs_its_run_and_a_fresh_machine_resumes_from_the_pieces(tmp_path):
    """The script's own flow (launch, union, pack, RESUME) with a stand-in for Python that records what
    the launch found in the run directory."""
    fake = tmp_path / "fake-python"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'args=("$@")\n'
        'for i in "${!args[@]}"; do case ${args[$i]} in --storage) runs=${args[$((i+1))]};; '
        "--out) out=${args[$((i+1))]};; esac; done\n"
        "if [[ $2 == amc_dist.launch ]]; then\n"
        '  mkdir -p "$runs/mnist-full"; ls "$runs/mnist-full" > "$runs/../found.txt"\n'
        '  head -c 20000000 /dev/urandom > "$runs/mnist-full/big.pt"\n'
        '  echo step >> "$runs/mnist-full/steps.txt"\n'
        'else mkdir -p "$out" && echo table > "$out/union.md"; fi\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake)}
    script = str(CLUSTER / "full_mnist_gpu.sh")
    first, second = tmp_path / "first", tmp_path / "second"
    subprocess.run(["bash", script, str(first)], env=env, check=True, capture_output=True, cwd=ROOT)
    pieces = sorted(p.name for p in first.glob("mnist-full.tar.gz.part-*"))
    assert pieces == ["mnist-full.tar.gz.part-aa", "mnist-full.tar.gz.part-ab"]  # 20 MB in 15 MiB pieces
    assert all(p.stat().st_size <= 15 * 2**20 for p in first.glob("mnist-full.tar.gz.part-*"))
    assert (first / "found.txt").read_text() == "" and (first / "union" / "union.md").exists()
    run = subprocess.run(
        ["bash", script, str(second)], env={**env, "RESUME": str(first)}, check=True, capture_output=True,
        text=True, cwd=ROOT,
    )  # fmt: skip
    assert (second / "found.txt").read_text().split() == ["big.pt", "steps.txt"]  # the launch resumed
    assert (second / "runs" / "mnist-full" / "steps.txt").read_text() == "step\nstep\n"
    assert "experiment finished" in run.stdout
