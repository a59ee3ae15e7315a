#!/usr/bin/env bash
# The GPU check: one short script (under 10 minutes on one GPU) to run whenever a GPU machine is
# lent. Nothing in the package or its tests depends on it.
#
#   1. the step-time overhead benchmark (ratios to cross-entropy), jit_compile off and on;
#   2. a 2-epoch MirroredStrategy run of each method on whatever GPUs TensorFlow sees
#      (`compare --strategy mirrored`: every GPU is a replica), a multi-class and a binary task.
#
#   bash benchmarks/device_check.sh [OUTPUT_DIR]      # default runs/device_check
#   bash benchmarks/device_check.sh --quick [DIR]     # a CPU smoke test of the script itself
#
# It installs nothing: run it in an environment where `pip install -e ".[test]"` has been done
# (TensorFlow with GPU support for a GPU machine). Record its figures in docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
if [ "${1:-}" = "--quick" ]; then quick=true; shift; fi
out="${1:-runs/device_check}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

python - <<'PY' | tee "$out/devices.txt"
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print(f"TensorFlow {tf.__version__}; GPUs: {len(gpus)}", *[gpu.name for gpu in gpus], sep="\n  ")
PY

methods="crossentropy,ce_el_0-0.5,stochastic,stochastic_paper,uniloss_accuracy,ala,poly1"
methods="$methods,nce_rce,ldam_drw,squentropy,sparsemax,anyloss_f1"
binary="crossentropy,uniloss_ap,ensloss"
if $quick; then  # the script's every step, on few methods
  overhead=(--rounds 2 --steps 8 --jit off --only "ExpectationMix,StochasticLoss (K=3")
  epochs=1 methods="crossentropy,stochastic,ala" binary="crossentropy,uniloss_ap"
else
  overhead=(--rounds 8 --steps 40 --jit both)
  epochs=2
fi

echo "== step time (benchmarks/overhead.py ${overhead[*]})"
timeout 360 python benchmarks/overhead.py "${overhead[@]}" | tee "$out/overhead.txt"

echo "== MirroredStrategy, $epochs epoch(s) per method: digits (10 classes)"
timeout 240 python -m keras_adaptive_loss compare --dataset digits --strategy mirrored \
  --epochs "$epochs" --seeds 1 --losses "$methods" --output "$out/mirrored_digits"
echo "== MirroredStrategy, $epochs epoch(s) per method: breast_cancer (binary)"
timeout 120 python -m keras_adaptive_loss compare --dataset breast_cancer --strategy mirrored \
  --epochs "$epochs" --seeds 1 --losses "$binary" \
  --output "$out/mirrored_binary"
echo "device check done: $out"
