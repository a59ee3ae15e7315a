"""What `compare` reports as evidence: paired statistics, tie-correct AP, training regimes
(label noise, long tail, train size, best-epoch evaluation) and a user's own data."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, f1_score

import keras_adaptive_loss as kal
from keras_adaptive_loss import cli, datasets
from keras_adaptive_loss.ala.controllers.metrics import average_precision
from keras_adaptive_loss.ala.controllers.metrics import f1_score as our_f1_score
from keras_adaptive_loss.comparison import regimes
from keras_adaptive_loss.comparison.data import noisy_labels
from keras_adaptive_loss.comparison.paired import paired_difference, t_quantile
from keras_adaptive_loss.comparison.recorders import BestEpochWeights
from keras_adaptive_loss.comparison.result import ComparisonResult, RunRecord

# ---------------------------------------------------------------- paired statistics


def test_paired_difference_matches_scipy_t_interval():
    values = np.array([0.912, 0.934, 0.921, 0.950, 0.941, 0.930])
    reference = np.array([0.900, 0.934, 0.915, 0.931, 0.942, 0.921])
    got = paired_difference(values, reference)
    differences = values - reference
    low, high = stats.t.interval(
        0.95, len(differences) - 1, loc=differences.mean(), scale=stats.sem(differences)
    )
    assert got.n == 6
    assert got.mean == pytest.approx(differences.mean())
    assert (got.low, got.high) == pytest.approx((low, high))
    assert (got.wins, got.ties, got.losses) == (4, 1, 1)
    # scipy's paired t-test agrees with the interval: p < 0.05 iff 0 lies outside it
    p_value = stats.ttest_rel(values, reference).pvalue
    assert got.excludes_zero == (p_value < 0.05)


@pytest.mark.parametrize(
    ("probability", "degrees", "table"),
    [  # standard Student-t tables; with 1 degree of freedom, Cauchy: tan(pi (p - 1/2))
        (0.975, 1, 12.706205), (0.975, 4, 2.776445), (0.975, 9, 2.262157),
        (0.975, 29, 2.045230), (0.995, 10, 3.169273), (0.95, 200, 1.652508),
        (0.6, 1, 0.3249197),  # tan(0.1 pi)
    ],
)  # fmt: skip
def test_t_quantile_matches_the_tables(probability, degrees, table):
    assert t_quantile(probability, degrees) == pytest.approx(table, abs=2e-6)


def test_t_quantile_rejects_what_has_no_quantile():
    with pytest.raises(ValueError, match="degrees_of_freedom must be >= 1"):
        t_quantile(0.975, 0)
    with pytest.raises(ValueError, match=r"probability must be in \(0, 1\)"):
        t_quantile(1.0, 4)


def test_interval_marker_and_one_seed():
    clear = paired_difference([0.9, 0.91, 0.92, 0.9, 0.91], [0.8, 0.8, 0.81, 0.8, 0.8])
    assert clear.excludes_zero and clear.low > 0
    worse = paired_difference([0.8, 0.8, 0.81, 0.8, 0.8], [0.9, 0.91, 0.92, 0.9, 0.91])
    assert worse.excludes_zero and worse.high < 0
    single = paired_difference([0.9], [0.8])
    assert single.mean == pytest.approx(0.1) and np.isnan(single.low) and not single.excludes_zero
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([0.9, 0.8], [0.8])


def _run(loss: str, seed: int, accuracy: float) -> RunRecord:
    return RunRecord(loss, seed, {"accuracy": accuracy}, [0.1], {"loss": [1.0]})


def _result(reference: str | None = None) -> ComparisonResult:
    accuracies = {
        "crossentropy": [0.80, 0.82, 0.81, 0.79, 0.80],
        "good": [0.85, 0.86, 0.84, 0.85, 0.86],
        "same": [0.80, 0.83, 0.80, 0.79, 0.81],
    }
    runs = [_run(loss, seed, acc[seed]) for seed in range(5) for loss, acc in accuracies.items()]
    config = {
        "dataset": "toy",
        "model": "mlp",
        "epochs": 1,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "train_size": 10,
        "seeds": list(range(5)),
        "reference": reference,
    }
    return ComparisonResult(config, runs)


def test_comparison_result_pairs_by_seed_and_marks_the_table():
    result = _result()
    rows = {row["loss"]: row for row in result.paired()}
    assert set(rows) == {"good", "same"}
    good = paired_difference([0.85, 0.86, 0.84, 0.85, 0.86], [0.80, 0.82, 0.81, 0.79, 0.80])
    assert rows["good"]["accuracy_mean"] == pytest.approx(good.mean)
    assert rows["good"]["accuracy_low"] == pytest.approx(good.low)
    assert rows["good"]["accuracy_excludes_zero"] and not rows["same"]["accuracy_excludes_zero"]
    assert (rows["same"]["accuracy_wins"], rows["same"]["accuracy_ties"]) == (2, 2)
    table = result.table()
    good_line = next(line for line in table.splitlines() if line.startswith("good"))
    same_line = next(line for line in table.splitlines() if line.startswith("same"))
    assert f"{100 * good.mean:+6.2f}" in good_line and " * " in good_line and "5/0/0" in good_line
    assert " * " not in same_line and "2/2/1" in same_line
    assert "(reference)" in next(line for line in table.splitlines() if line.startswith("cross"))
    # another reference, and a reference that is not compared
    assert {row["loss"] for row in _result("good").paired()} == {"crossentropy", "same"}
    with pytest.raises(ValueError, match="not in this comparison"):
        _result().paired("focal")


@pytest.mark.slow
def test_compare_writes_paired_csv_json_and_plot(tmp_path):
    output = tmp_path / "runs"
    status = cli.main(
        ["compare", "--dataset", "iris", "--losses", "focal,crossentropy", "--seeds", "2",
         "--epochs", "1", "--reference", "crossentropy", "--output", str(output), "--quiet"]
    )  # fmt: skip
    assert status == 0
    with open(output / "paired.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["loss"] for row in rows] == ["focal"] and rows[0]["reference"] == "crossentropy"
    document = json.loads((output / "results.json").read_text())
    focal = [r["test_metrics"]["accuracy"] for r in document["runs"] if r["loss"] == "focal"]
    ce = [r["test_metrics"]["accuracy"] for r in document["runs"] if r["loss"] == "crossentropy"]
    assert document["paired"][0]["accuracy_mean"] == pytest.approx(np.mean(focal) - np.mean(ce))
    assert document["config"]["reference"] == "crossentropy"
    with open(output / "paired_differences.png", "rb") as file:
        assert file.read(4) == b"\x89PNG"


def test_reference_must_be_compared():
    with pytest.raises(ValueError, match="reference 'ala' is not among"):
        kal.compare("iris", ["crossentropy", "focal"], reference="ala", seeds=1, epochs=1)


# ---------------------------------------------------------------- tie-correct AP


def test_average_precision_with_ties_equals_sklearn():
    labels, scores = np.array([1, 0, 1, 0, 1, 0]), np.array([0.9, 0.9, 0.5, 0.5, 0.2, 0.1])
    assert average_precision(labels, scores) == pytest.approx(0.5333333333333333)
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores)
    )
    rng = np.random.default_rng(0)
    for _ in range(50):
        labels = rng.integers(0, 2, size=40)
        labels[0] = 1
        scores = rng.integers(0, 6, size=40) / 5.0  # many ties, saturated values included
        order = rng.permutation(40)  # the order of tied samples must not matter
        expected = average_precision_score(labels, scores)
        assert average_precision(labels, scores) == pytest.approx(expected)
        assert average_precision(labels[order], scores[order]) == pytest.approx(expected)
    assert average_precision(np.zeros(4), np.ones(4)) == 0.0


# ---------------------------------------------------------------- regimes


@pytest.mark.parametrize("seed", range(5))
def test_f1_of_class_one_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    y, predicted = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
    assert our_f1_score(y, predicted) == pytest.approx(f1_score(y, predicted))
    assert our_f1_score(np.zeros(4), np.zeros(4)) == 0.0  # no positives, none predicted


@pytest.mark.parametrize("kind", ["symmetric", "pair"])
def test_label_noise_flips_the_rate_and_never_keeps_a_flipped_label(kind):
    labels = np.random.default_rng(1).integers(0, 5, size=2000)
    noisy = regimes.add_label_noise(labels, 0.4, 5, kind, np.random.default_rng(2))
    flipped = noisy != labels
    assert flipped.mean() == pytest.approx(0.4, abs=1 / 2000)
    if kind == "pair":
        assert np.all(noisy[flipped] == (labels[flipped] + 1) % 5)
    else:  # every other class is a target
        targets = np.bincount((noisy[flipped] - labels[flipped]) % 5, minlength=5)
        assert targets[0] == 0 and np.all(targets[1:] > 0.2 * flipped.sum() / 4 * 3)
    with pytest.raises(ValueError, match="rate must lie in"):
        regimes.add_label_noise(labels, 1.0, 5, kind, np.random.default_rng(0))
    with pytest.raises(ValueError, match="noise type"):
        regimes.add_label_noise(labels, 0.1, 5, "asymmetric", np.random.default_rng(0))


@pytest.mark.slow
def test_compare_noise_is_per_seed_same_for_every_loss_and_spares_the_test_split():
    seen: dict[tuple[str, int], np.ndarray] = {}

    def recording(label):
        def factory(context):
            seen[(label, context.seed)] = np.array(context.validation_data[1])
            return keras.losses.SparseCategoricalCrossentropy()

        return factory

    data = datasets.load("wine")
    result = kal.compare(
        data, {"a": recording("a"), "b": recording("b")}, seeds=2, epochs=1,
        label_noise=0.3, verbose=0,
    )  # fmt: skip
    clean = kal.compare(data, {"a": recording("clean")}, seeds=1, epochs=1, verbose=0)
    assert np.array_equal(seen[("a", 0)], seen[("b", 0)])
    assert np.array_equal(seen[("a", 1)], seen[("b", 1)])
    assert not np.array_equal(seen[("a", 0)], seen[("a", 1)])
    val_clean = seen[("clean", 0)]
    assert np.mean(seen[("a", 0)] != val_clean) == pytest.approx(0.3, abs=1 / len(val_clean))
    # training labels: the same helper compare uses, checked for its rate
    splits = (np.zeros((200, 1)), np.arange(200) % 3, np.zeros((50, 1)), np.arange(50) % 3)
    noisy = noisy_labels(splits, 0, 3, rate=0.3, kind="symmetric")
    assert np.mean(noisy[1] != splits[1]) == pytest.approx(0.3)
    assert np.array_equal(data.y_test, datasets.load("wine").y_test)  # test labels untouched
    assert result.config["label_noise"] == 0.3 and clean.config["label_noise"] == 0.0
    assert "label noise 0.3" in result.table().splitlines()[0]


@pytest.mark.slow
def test_long_tail_profile_counts():
    counts = regimes.long_tail_counts(np.array([100, 120, 90, 110, 100]), 100.0)
    expected = np.floor(90 * 100.0 ** (-np.arange(5) / 4) + 0.5)
    assert counts.tolist() == expected.astype(int).tolist() == [90, 28, 9, 3, 1]
    labels = np.repeat(np.arange(5), 100)
    kept = regimes.long_tail_indices(labels, 10.0, np.random.default_rng(0))
    assert np.bincount(labels[kept]).tolist() == regimes.long_tail_counts([100] * 5, 10).tolist()
    result = kal.compare("digits", ["crossentropy"], seeds=1, epochs=1, imbalance=10, verbose=0)
    kept = int(sum(regimes.long_tail_counts(np.bincount(datasets.load("digits").y_train), 10)))
    assert result.config["train_size"] == kept - round(0.15 * kept)  # minus the hold-out
    assert "imbalance 10:1" in result.table()
    with pytest.raises(ValueError, match="imbalance must be"):
        kal.compare("iris", ["crossentropy"], seeds=1, epochs=1, imbalance=0.5)


def test_train_size_is_stratified():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    kept = regimes.subsample(labels, 10, np.random.default_rng(0))
    assert len(kept) == 10 and np.bincount(labels[kept]).tolist() == [5, 3, 2]
    with pytest.raises(ValueError, match="train size must be an integer"):
        regimes.subsample(labels, 101, np.random.default_rng(0))
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        regimes.subsample(labels, 2, np.random.default_rng(0))
    result = kal.compare("iris", ["crossentropy"], seeds=1, epochs=1, train_size=60, verbose=0)
    assert result.config["train_subset"] == 60 and result.config["train_size"] == 60 - 9


def test_sgd_optimizer_is_used_and_recorded():
    result = kal.compare("iris", ["crossentropy"], seeds=1, epochs=1, optimizer="sgd", verbose=0)
    assert result.config["optimizer"] == "sgd" and "SGD(momentum 0.9)" in result.table()
    with pytest.raises(ValueError, match="optimizer must be one of"):
        kal.compare("iris", ["crossentropy"], optimizer="rmsprop")


@pytest.mark.parametrize(("latest", "expected"), [(False, 2), (True, 4)])
def test_best_epoch_weights_break_ties_as_asked(latest, expected):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    selector = BestEpochWeights(latest_ties=latest)
    selector.set_model(model)
    snapshots = {}
    for epoch, accuracy in enumerate([0.5, 0.9, 0.7, 0.9, 0.8]):
        model.set_weights([np.full((2, 1), float(epoch)), np.zeros(1)])
        snapshots[epoch + 1] = model.get_weights()[0].copy()
        selector.on_epoch_end(epoch, {"val_accuracy": accuracy})
    selector.on_train_end()
    assert selector.best_epoch == expected
    np.testing.assert_array_equal(model.get_weights()[0], snapshots[expected])
    with pytest.raises(ValueError, match="val_accuracy"):
        selector.on_epoch_end(0, {"accuracy": 1.0})


def test_compare_best_evaluation_records_the_selected_epoch():
    result = kal.compare(
        "iris", ["crossentropy"], seeds=1, epochs=4, evaluation="best-latest", verbose=0
    )
    run = result.runs[0]
    accuracies = run.history["val_accuracy"]
    assert run.selected_epoch == len(accuracies) - accuracies[::-1].index(max(accuracies))
    assert result.config["evaluation"] == "best-latest"


# ---------------------------------------------------------------- the user's own data


def _write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]))
    return str(path)


@pytest.mark.slow
def test_csv_and_npz_datasets_train(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] > 0).astype(int)
    rows = [[*row, ["neg", "pos"][label]] for row, label in zip(x, y, strict=True)]
    path = _write_csv(tmp_path / "data.csv", ["a", "b", "c", "target"], rows)
    data = datasets.load_csv(path, "target")
    assert data.num_classes == 2 and data.x_train.shape == (60, 3)
    np.testing.assert_allclose(data.x_train.mean(0), 0.0, atol=1e-5)
    result = kal.compare(
        path, ["crossentropy"], label_column="target", seeds=1, epochs=1, verbose=0
    )
    assert result.config["dataset"] == "data.csv"

    npz = tmp_path / "data.npz"
    np.savez(npz, x=x, y=y, x_test=x[:10], y_test=y[:10])
    loaded = datasets.load_npz(str(npz))
    assert loaded.x_train.shape == (80, 3) and loaded.x_test.shape == (10, 3)
    assert kal.compare(str(npz), ["crossentropy"], seeds=1, epochs=1, verbose=0).runs


def _bad_files(tmp_path):
    good = [[1, 2, 0], [2, 3, 1], [3, 1, 0], [4, 4, 1]]
    np.savez(tmp_path / "no_y.npz", x=np.zeros((4, 2)))
    np.savez(tmp_path / "text.npz", x=np.array([["a"], ["b"]]), y=np.array([0, 1]))
    np.savez(tmp_path / "one.npz", x=np.zeros((4, 2)), y=np.zeros(4, int))
    np.savez(tmp_path / "half.npz", x=np.zeros((4, 2)), y=np.arange(4) % 2, x_test=np.zeros((1, 2)))
    (tmp_path / "broken.npz").write_text("not a zip")
    return [
        (_write_csv(tmp_path / "nolabel.csv", ["a", "b", "y"], good), "no label column 'label'"),
        (_write_csv(tmp_path / "text.csv", ["a", "b", "label"], [*good, ["x", 1, 0]]),
         "feature 'a' is not a number ('x')"),
        (_write_csv(tmp_path / "one.csv", ["a", "b", "label"], [[1, 2, 0], [2, 3, 0]]),
         "only one class"),
        (_write_csv(tmp_path / "ragged.csv", ["a", "b", "label"], [*good, [1, 2]]), "line 6"),
        (str(tmp_path / "missing.csv"), "does not exist"),
        (str(tmp_path / "no_y.npz"), "needs arrays 'x' and 'y'"),
        (str(tmp_path / "text.npz"), "features must be numeric"),
        (str(tmp_path / "one.npz"), "only one class"),
        (str(tmp_path / "half.npz"), "both 'x_test' and 'y_test'"),
        (str(tmp_path / "broken.npz"), "not a readable .npz"),
        ("synthetic:classes=3,colour=2", "Bad synthetic setting 'colour=2'"),
        ("synthetic:classes=three", "must be a number"),
        ("synthetic:classes=2.5", "whole number"),
        ("synthetic:features=4,informative=8", "Synthetic spec"),
    ]  # fmt: skip


def test_bad_dataset_files_exit_2_with_one_line(tmp_path, capsys):
    for path, message in _bad_files(tmp_path):
        status = cli.main(["compare", "--dataset", path, "--losses", "crossentropy",
                           "--seeds", "1", "--epochs", "1", "--quiet"])  # fmt: skip
        captured = capsys.readouterr()
        assert status == 2, path
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (path, captured.err)
        assert lines[0].startswith("keras-adaptive-loss: error:")


def test_synthetic_spec_parser():
    data = datasets.synthetic("synthetic:classes=5,samples=600,features=8,informative=4,seed=3")
    assert data.num_classes == 5 and len(data.x_train) + len(data.x_test) == 600
    assert data.x_train.shape[1] == 8
    again = datasets.synthetic("synthetic:classes=5,samples=600,features=8,informative=4,seed=3")
    np.testing.assert_array_equal(data.x_train, again.x_train)
    other = datasets.synthetic("synthetic:classes=5,samples=600,features=8,informative=4,seed=4")
    assert not np.array_equal(data.x_train, other.x_train)
    defaults = datasets.synthetic("synthetic")
    assert defaults.num_classes == datasets.SYNTHETIC_DEFAULTS["classes"]
    with pytest.raises(ValueError, match="starts with 'synthetic'"):
        datasets.synthetic("random:classes=2")


def test_pr_auc_learning_curve_metric_estimates_average_precision():
    from keras_adaptive_loss.comparison.epoch_metrics import PositiveClassPRAUC

    rng = np.random.default_rng(5)
    labels = (rng.random(400) < 0.3).astype("int64")
    logits = np.stack([np.zeros(400), 1.5 * labels + rng.normal(size=400)], axis=1)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = average_precision(labels, probabilities[:, 1])
    from_probabilities = PositiveClassPRAUC()
    from_logits = PositiveClassPRAUC(from_logits=True)
    for start in range(0, 400, 64):  # accumulated over batches, as in fit
        batch = slice(start, start + 64)
        from_probabilities.update_state(labels[batch], probabilities[batch].astype("float32"))
        from_logits.update_state(labels[batch], logits[batch].astype("float32"))
    assert float(from_probabilities.result()) == pytest.approx(expected, abs=0.02)
    assert float(from_logits.result()) == pytest.approx(float(from_probabilities.result()), 1e-5)
    restored = PositiveClassPRAUC.from_config(from_logits.get_config())
    assert restored.softmax_logits and restored.name == "pr_auc"


def test_binary_learning_curves_add_a_pr_auc_row(tmp_path):
    from keras_adaptive_loss.comparison import report

    runs = [
        _record("crossentropy", s, 0.9, pr_auc=[0.6, 0.8], val_pr_auc=[0.5, 0.7]) for s in (0, 1)
    ]
    result = ComparisonResult({"dataset": "toy", "model": "mlp", "seeds": [0, 1]}, runs)
    report.plot_learning_curves(result, str(tmp_path / "binary.png"))
    multiclass = ComparisonResult(result.config, [_record("crossentropy", 0, 0.9)])
    report.plot_learning_curves(multiclass, str(tmp_path / "multiclass.png"))
    image = pytest.importorskip("matplotlib.image")
    binary_height = image.imread(str(tmp_path / "binary.png")).shape[0]
    assert binary_height > 1.8 * image.imread(str(tmp_path / "multiclass.png")).shape[0]


def _record(loss, seed, accuracy, **history):
    return RunRecord(
        loss=loss, seed=seed, test_metrics={"accuracy": accuracy}, epoch_seconds=[0.1, 0.1],
        history={"accuracy": [0.5, accuracy], "val_accuracy": [0.5, accuracy], **history},
        parameters={}, selected_epoch=2,
    )  # fmt: skip


def test_plots_use_every_seed_and_a_floor_one_collapsed_run_does_not_set(tmp_path):
    from keras_adaptive_loss.comparison import report

    weights = {"slf_weight_mse": [0.2, 0.4], "slf_weight_crossentropy": [0.8, 0.6]}
    runs = [
        _record("crossentropy", 0, 0.90), _record("crossentropy", 1, 0.92),
        _record("stochastic", 0, 0.91, **weights), _record("stochastic", 1, 0.93, **weights),
    ]  # fmt: skip
    result = ComparisonResult({"dataset": "toy", "model": "mlp", "seeds": [0, 1]}, runs)
    (loss, title, data), = report._parameter_panels(result)  # fmt: skip
    assert loss == "stochastic" and "2 seeds" in title
    assert data["mse"].shape == (2, 2)  # both seeds, both epochs
    good, collapsed = np.array([10.0, 90, 91, 92, 93]), np.array([10.0, 10, 11, 12, 12])
    floor = report._robust_floor([good] * 39 + [collapsed])
    assert 80.0 <= floor < 90.0  # below the bulk, not pulled down to the collapsed run
    assert report._robust_floor([np.array([50.0])]) == 45.0  # a 1-epoch run: its one value
    report.plot_learning_curves(result, str(tmp_path / "curves.png"))
    report.plot_parameters(result, str(tmp_path / "parameters.png"))
    assert (tmp_path / "curves.png").stat().st_size > 10_000
