"""BackupAndRestore: a run interrupted and resumed keeps the adapted loss state."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_adaptive_loss as kal
from tests import helpers


def _phi(seed):
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-0.5, 0.5, size=(4, 4))
    phi = (phi + phi.T) / 2
    np.fill_diagonal(phi, 1.0)
    return phi


class _SetPhiOnce(keras.callbacks.Callback):
    """Adapts Φ once, in epoch 0: a resumed run (from epoch 2) only has it from the backup."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            self.model.loss.set_parameter("phi", _phi(7))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make_loss", "state"),
    [
        (lambda: kal.losses.ClassCorrelationLoss(4), lambda loss: loss.get_parameter("phi")),
        (lambda: kal.losses.UniLossAccuracy(seed=0), lambda loss: loss.draws),
        (
            # No num_classes: the decision network is built while the backup loads.
            lambda: kal.StochasticLoss(["crossentropy", "mse"], seed=0),
            lambda loss: (
                np.concatenate(
                    [np.ravel(v.numpy()) for v in loss.decision_network.weights]
                    + [np.ravel(v.numpy()) for v in loss.state.weights]
                )
                if loss.decision_network.built
                else np.zeros(1)
            ),
        ),
    ],
    ids=["class-correlation-phi", "uniloss-random-stream", "stochastic-decision-network"],
)
def test_resumed_run_restores_the_adapted_loss_state(
    tmp_path, toy_classification, make_loss, state
):
    x, y = toy_classification

    def run(callbacks):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
        loss = make_loss()
        model.compile(optimizer="adam", loss=loss)
        adapt = [_SetPhiOnce()] if isinstance(loss, kal.losses.ClassCorrelationLoss) else []
        model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[*adapt, *callbacks])
        return model, loss

    _, uninterrupted = run([])
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(helpers.InterruptError):
        run([backup, helpers.InterruptAtEpoch(2)])
    _, resumed = run([keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    np.testing.assert_allclose(state(resumed), state(uninterrupted))
    assert not np.allclose(state(resumed), state(make_loss()))  # really adapted
