#!/usr/bin/env bash
# The CUDA paths on a lent GPU in one run (at most 5 minutes on one H100): every attack on CUDA against
# its CPU result on the same weights, a fit and its resume, the tiny config's whole graph in-process with
# run.device=cuda, `amc union`, and, where Ray came along, the tiny launch with use_gpu through plain
# tasks and through a TorchTrainer (NCCL). One line per check: ok or FAIL with the error, and its seconds
# (cluster/gpu_smoke.py says what each compares and within what).
#
#   cluster/gpu_smoke.sh prepare          # here, with a package index: fills .gpu-smoke/ (git-ignored)
#   cluster/gpu_smoke.sh run OUT          # on the device: installs .gpu-smoke/wheels, runs the checks
#   DEVICE=cpu cluster/gpu_smoke.sh run OUT   # the rehearsal on a CPU machine with the project installed
#
# The device has python 3.12 with torch, but neither Ray nor pydantic, and no network; what travels
# (the working tree plus carried paths) is at most 64 MiB. `prepare` therefore downloads cp312 wheels of
# what the device lacks (pydantic, Ray and the dashboard's needs; Train needs the dashboard's state API)
# and repacks Ray's 76 MiB wheel without what a headless Python run never loads (the Java jar, RLlib,
# the LLM library; the dashboard's web client stays, its server refuses to start without it): about 41 MiB. MNIST's four IDX files travel xz-packed
# (9 MiB; the loader checks each against its sha256). Carry `.gpu-smoke` in the device call; WHEELS and
# DATA override where the wheels and mnist.tar.xz are found. PYTHON picks the interpreter (python3).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
smoke=${SMOKE_DIR:-$here/.gpu-smoke}
wheels=${WHEELS:-$smoke/wheels}
data=${DATA:-$smoke/mnist.tar.xz}
# The versions this project's environment was tested with (pip freeze), for cp312 on x86-64 Linux.
NEEDED=(
  ray==2.60.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  typing_extensions==4.16.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0
  rpds-py==2026.9.1 aiohttp-cors==0.8.1 colorful==0.5.8 opencensus==0.11.4 opencensus-context==0.1.3
  google-api-core==2.44.0 google-auth==2.63.1 googleapis-common-protos==1.76.0 proto-plus==1.29.0
  pyasn1==0.6.5 pyasn1_modules==0.4.2 opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2
  opentelemetry-exporter-prometheus==0.66b2 opentelemetry-proto==1.45.2
  opentelemetry-semantic-conventions==0.66b2
)

mib() { du -cb "$@" | tail -1 | awk '{printf "%.1f MiB", $1 / 1048576}'; }

case ${1:-} in
prepare)
  mkdir -p "$wheels"
  platforms=()
  for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
           manylinux1_x86_64 manylinux_2_5_x86_64 any; do platforms+=(--platform "$p"); done
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$wheels" "${NEEDED[@]}"
  "$python" "$here/cluster/strip_wheel.py" "$wheels"/ray-2.60.0-*.whl \
    ray/jars/ ray/rllib/ ray/llm/
  echo "wheels: $(mib "$wheels"/*.whl) in $(ls "$wheels" | wc -l) files"
  root=${AMC_DATA:-$HOME/.cache/amc-dist}
  tar -C "$root" -cf - mnist/train-images-idx3-ubyte mnist/train-labels-idx1-ubyte \
    mnist/t10k-images-idx3-ubyte mnist/t10k-labels-idx1-ubyte | xz -6 -T0 > "$data"
  echo "MNIST: $(mib "$data"); all that travels with the tree: $(mib "$smoke")"
  ;;
run)
  out=${2:?usage: [DEVICE=cpu] $0 run OUT_DIR}
  mkdir -p "$out"
  if ! "$python" -c "import pydantic" 2>/dev/null; then
    started=$SECONDS
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/amc-site \
      "$wheels"/*.whl
    export PYTHONPATH=/tmp/amc-site${PYTHONPATH:+:$PYTHONPATH}
    echo "installed $(ls "$wheels" | wc -l) wheels in $((SECONDS - started))s"
  fi
  if [[ -f $data && ! -f ${AMC_DATA:-/nonexistent}/mnist/t10k-labels-idx1-ubyte ]]; then
    export AMC_DATA=${AMC_DATA:-/tmp/amc-data}
    mkdir -p "$AMC_DATA" && xz -dc "$data" | tar -C "$AMC_DATA" -xf -
  fi
  export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  "$python" "$here/cluster/gpu_smoke.py" --device "${DEVICE:-cuda}" --out "$out" 2>&1 | tee "$out/smoke.log"
  ;;
*)
  echo "usage: $0 prepare | [DEVICE=cpu] $0 run OUT_DIR" >&2
  exit 2
  ;;
esac
