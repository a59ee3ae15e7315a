"""How UniLoss's cost grows with the number of binaries: time and peak memory per step.

UniLossAccuracy on random logits ``[batch, classes]`` gives ``batch * (classes - 1)`` binaries;
one step is the loss and its gradient w.r.t. the logits in a ``tf.function`` (16 anchors of
each type). Each size runs in a fresh subprocess, so that its peak resident memory (minus the
process's memory after TensorFlow has started) is its own.

    python benchmarks/uniloss_scaling.py            # 10^3 ... 10^6 binaries
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# (batch, classes): batch * (classes - 1) binaries
SIZES = [(100, 11), (1000, 11), (1000, 101), (1000, 1001)]


def measure_one(batch: int, classes: int, repeats: int = 20) -> dict:
    """Runs in the child process: median step time and peak memory above the start."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    import keras_adaptive_loss as kal

    tf.constant(1.0) + 1.0  # start the runtime before the baseline reading
    start_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rng = np.random.default_rng(0)
    logits = tf.Variable(rng.normal(size=(batch, classes)).astype("float32"))
    labels = tf.constant(rng.integers(0, classes, size=batch))
    loss = kal.losses.UniLossAccuracy(from_logits=True, seed=0)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = loss(labels, logits)
        return value, tape.gradient(value, logits)

    step()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        value, _ = step()
        float(value)
        times.append(time.perf_counter() - begin)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "binaries": batch * (classes - 1),
        "batch": batch,
        "classes": classes,
        "ms_per_step": 1000 * float(np.median(times)),
        "peak_mb": (peak_kb - start_kb) / 1024,
    }


def main(sizes=SIZES) -> list[dict]:
    rows = []
    for batch, classes in sizes:
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(batch), str(classes)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    print(f"{'binaries':>10} {'batch x classes':>16} {'ms / step':>10} {'peak MB':>8}")
    for row in rows:
        shape = f"{row['batch']} x {row['classes']}"
        print(
            f"{row['binaries']:>10} {shape:>16} {row['ms_per_step']:>10.2f} {row['peak_mb']:>8.1f}"
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, type=int, metavar=("BATCH", "CLASSES"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_one(*args.child)))
    else:
        main()
