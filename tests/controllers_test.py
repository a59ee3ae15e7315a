"""ALA controller logic: rewards (Eqs. 4-5), baseline, replay memory, states, REINFORCE policy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_adaptive_loss import controllers


def test_discounted_metric_by_hand():
    # 0.9^2 * 0.30 + 0.9 * 0.25 + 0.20
    assert controllers.discounted_metric([0.30, 0.25, 0.20], 0.9) == pytest.approx(0.668)
    with pytest.raises(ValueError, match="at least one"):
        controllers.discounted_metric([])
    with pytest.raises(ValueError, match=r"discount must lie in \(0, 1\]"):
        controllers.discounted_metric([1.0], 0.0)


@pytest.mark.parametrize(
    ("previous", "current", "higher", "want"),
    [(0.3, 0.2, False, 1.0), (0.2, 0.3, False, -1.0), (0.2, 0.2, False, 0.0),
     (0.8, 0.9, True, 1.0), (0.9, 0.8, True, -1.0)],
)  # fmt: skip
def test_sign_reward(previous, current, higher, want):
    assert controllers.sign_reward(previous, current, higher_is_better=higher) == want


def test_sign_reward_refuses_nan():
    with pytest.raises(ValueError, match="finite metrics"):
        controllers.sign_reward(0.5, float("nan"))


def test_moving_average_baseline_by_hand():
    baseline = controllers.MovingAverageBaseline(momentum=0.5)
    assert [baseline.advantage(r) for r in (1.0, 1.0, -1.0)] == [1.0, 0.5, -1.75]
    assert baseline.value == pytest.approx(-0.125)


def test_replay_memory_wraps_samples_and_restores():
    memory = controllers.ReplayMemory(capacity=4, feature_size=2, seed=0)
    memory.add(np.arange(12).reshape(6, 2), np.arange(6) % 3, np.arange(6))
    assert memory.size == 4
    assert sorted(memory.advantages.tolist()) == [2.0, 3.0, 4.0, 5.0]  # the two oldest went
    states, _, advantages = memory.sample(10)
    assert len(states) == 4 and len(set(advantages.tolist())) == 4  # without replacement
    clone = controllers.ReplayMemory(capacity=4, feature_size=2)
    clone.set_state(memory.get_state())
    for a, b in zip(memory.sample(3), clone.sample(3), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="non-finite"):
        memory.add(np.full((1, 2), np.nan), [0], [1.0])


def test_state_features_by_hand():
    features = controllers.StateFeatures(num_statistics=2, history=3, momentum=0.5)
    assert features.feature_size == 3 * 2 + 2 + 2
    features.observe(np.array([[1.0, 3.0], [2.0, 2.0]]))  # mean |stat| = 2
    features.observe(np.array([[2.0, 6.0], [4.0, 4.0]]))  # mean |stat| = 4
    state = features.features(np.array([0.5, -0.5]), progress=0.25)
    assert state.shape == (2, 10)
    np.testing.assert_allclose(state[0, :2], [0.5, 1.5])  # padded with the first step
    np.testing.assert_allclose(state[0, 2:4], [0.5, 1.5])
    np.testing.assert_allclose(state[0, 4:6], [0.5, 1.5])
    np.testing.assert_allclose(state[0, 6:8], [1.0, 1.0], rtol=1e-6)  # (2 - 1) / 1, (6 - 3) / 3
    np.testing.assert_allclose(state[1, 6:8], [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(state[:, 8:], [[0.5, 0.25], [-0.5, 0.25]])
    with pytest.raises(ValueError, match=r"shape \[parameters, 2\]"):
        features.observe(np.zeros((3, 3)))


def test_feature_size_does_not_depend_on_the_number_of_parameters():
    for pairs in (45, 10):  # class pairs of 10 and of 5 classes
        features = controllers.StateFeatures(num_statistics=2)
        features.observe(np.random.default_rng(pairs).random((pairs, 2)))
        assert features.features(np.zeros(pairs), 0.5).shape == (pairs, features.feature_size)


def test_policy_learns_to_raise_a_parameter_that_always_pays():
    """Synthetic environment: raising a parameter improves the metric, lowering worsens it."""
    features = controllers.StateFeatures(num_statistics=1, history=2)
    policy = controllers.Policy(features.feature_size, learning_rate=3e-3, seed=0)
    memory = controllers.ReplayMemory(2000, features.feature_size, seed=0)
    baseline = controllers.MovingAverageBaseline()
    rng = np.random.default_rng(0)
    values = np.zeros(8)
    features.observe(rng.random((8, 1)))
    first = policy.probabilities(features.features(values, 0.0))[:, 2].mean()
    for step in range(150):
        states = features.features(values, step / 150)
        actions = policy.act(states)
        step_size = np.take(controllers.ACTIONS, actions) * 0.1
        metric_before, metric_after = -values, -(values + step_size)
        rewards = [
            controllers.sign_reward(b, a) for b, a in zip(metric_before, metric_after, strict=True)
        ]
        advantages = [baseline.advantage(r) for r in rewards]
        memory.add(states, actions, advantages)
        policy.learn(*memory.sample(64))
        values = np.clip(values + step_size, -1, 1)
        features.observe(rng.random((8, 1)))
    last = policy.probabilities(features.features(values, 1.0))[:, 2].mean()
    assert first < 0.5 and last > 0.8, (first, last)


def test_policy_starts_by_mostly_keeping_parameters():
    policy = controllers.Policy(10, seed=0)
    probabilities = policy.probabilities(np.zeros((5, 10)))
    np.testing.assert_allclose(probabilities[:, 1], 0.8, rtol=1e-5)
    uniform = controllers.Policy(10, seed=0, keep_prior=1 / 3).probabilities(np.zeros((1, 10)))
    np.testing.assert_allclose(uniform, 1 / 3, rtol=1e-5)
    with pytest.raises(ValueError, match=r"keep_prior must lie in \(0, 1\)"):
        controllers.Policy(10, keep_prior=1.0)


def test_policy_save_load_and_transfer(tmp_path):
    features = controllers.StateFeatures(num_statistics=2)
    policy = controllers.Policy(features.feature_size, seed=1)
    features.observe(np.random.default_rng(0).random((45, 2)))
    ten_class_states = features.features(np.zeros(45), 0.3)
    policy.learn(ten_class_states, np.zeros(45, "int64"), np.ones(45))
    policy.save(tmp_path / "policy")
    assert json.loads((tmp_path / "policy" / "policy.json").read_text())["feature_size"] == 24
    loaded = controllers.Policy.load(tmp_path / "policy")
    np.testing.assert_allclose(
        loaded.probabilities(ten_class_states), policy.probabilities(ten_class_states), rtol=1e-6
    )
    five = controllers.StateFeatures(num_statistics=2)
    five.observe(np.random.default_rng(1).random((10, 2)))
    assert loaded.act(five.features(np.zeros(10), 0.1), greedy=True).shape == (10,)


def test_policy_load_refuses_a_foreign_config(tmp_path):
    (tmp_path / "policy.json").write_text(json.dumps({"class_name": "os.system"}))
    with pytest.raises(ValueError, match="not a saved ALA policy config"):
        controllers.Policy.load(tmp_path)
