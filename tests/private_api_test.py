"""The private TensorFlow/Keras API the package reads (`kal.private_api`), checked against the
installed versions so that an upgrade which removes it fails here, and the public
replacement for the worker count."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adaptive_loss as kal
from keras_adaptive_loss import _tensorflow, private_api


def test_xla_context_is_seen_only_inside_jit_compiled_functions():
    assert private_api.in_xla_compilation() is False
    plain = tf.function(lambda: tf.constant(private_api.in_xla_compilation()))
    compiled = tf.function(lambda: tf.constant(private_api.in_xla_compilation()), jit_compile=True)
    assert not bool(plain().numpy())
    assert bool(compiled().numpy())


def test_missing_xla_query_assumes_xla_and_warns_once(monkeypatch):
    monkeypatch.delattr(tf.__internal__, "get_enclosing_xla_context")
    monkeypatch.setattr(_tensorflow, "_warned", set())
    with pytest.warns(RuntimeWarning, match="layout='compact'"):
        assert private_api.in_xla_compilation() is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert private_api.in_xla_compilation() is True  # said once


def test_keras_mask_reads_the_mask_keras_attaches():
    embedded = keras.layers.Embedding(6, 3, mask_zero=True)(np.array([[4, 2, 0, 0]]))
    mask = private_api.keras_mask(embedded)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mask), [[True, True, False, False]])
    assert private_api.keras_mask(keras.ops.ones((2, 3))) is None


def test_the_ap_layout_follows_the_trace_without_state():
    ap = kal.uniloss.refactorings.AveragePrecisionRefactoring(layout="auto")
    assert ap.compact()
    assert bool(tf.function(lambda: tf.constant(ap.compact()))().numpy())
    assert not bool(tf.function(lambda: tf.constant(ap.compact()), jit_compile=True)().numpy())
    assert not hasattr(ap, "_compact")


def test_worker_count_reads_the_public_cluster_resolver():
    assert kal.distribute.worker_count() == 1
    assert not kal.distribute.is_multi_worker()

    class _TwoWorkers:  # a strategy as seen through its public `cluster_resolver`
        cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]})
        )

    assert kal.distribute.worker_count(_TwoWorkers()) == 2
    assert kal.distribute.is_multi_worker(_TwoWorkers())


def test_registered_loss_names_resolve_in_compile_and_train():
    assert type(keras.losses.get("keras_adaptive_loss>PolyLoss")) is kal.losses.PolyLoss
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3

    def train(loss):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss=loss)
        return model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]

    by_name = train("keras_adaptive_loss>PolyLoss")
    assert by_name[-1] < by_name[0]
    np.testing.assert_allclose(by_name, train(kal.losses.PolyLoss()), rtol=1e-6)
    # losses that need arguments are not put in Keras's table: kal.losses.get explains them
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        keras.losses.get("keras_adaptive_loss>StochasticLoss")
    with pytest.raises(ValueError, match="needs candidates"):
        kal.losses.get("keras_adaptive_loss>StochasticLoss")


def test_a_keras_without_the_loss_table_warns_once_and_adds_nothing(monkeypatch):
    monkeypatch.setattr(private_api, "_warned", set())
    monkeypatch.setattr(keras.losses, "get", lambda identifier: None)
    with pytest.warns(RuntimeWarning, match="will not resolve"):
        assert private_api.register_loss_names({"PolyLoss": kal.losses.PolyLoss}) == []
