"""ALA controller logic: rewards (Eqs. 4-5), baseline, replay memory, states, REINFORCE policy."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_adaptive_loss import controllers


def test_discounted_metric_by_hand():
    # 0.9^2 * 0.30 + 0.9 * 0.25 + 0.20
    assert controllers.discounted_metric([0.30, 0.25, 0.20], 0.9) == pytest.approx(0.668)
    normalised = controllers.discounted_metric([0.30, 0.25, 0.20], 0.9, normalize=True)
    assert normalised == pytest.approx(0.668 / (0.81 + 0.9 + 1.0))
    # One measurement and four equal ones give the same normalised metric: no first-reward bias.
    assert controllers.discounted_metric([0.3], normalize=True) == pytest.approx(
        controllers.discounted_metric([0.3] * 4, normalize=True)
    )
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


def test_replay_memory_wraps_samples_and_restores_from_its_variables(tmp_path):
    memory = controllers.ReplayMemory(capacity=4, feature_size=2, seed=0)
    memory.add(np.arange(12).reshape(6, 2), np.arange(6) % 3, np.arange(6), references=0.5)
    assert memory.size == 4
    assert sorted(memory.rewards.numpy().tolist()) == [2.0, 3.0, 4.0, 5.0]  # the two oldest went
    states, _, rewards, references = memory.sample(10)
    assert len(states) == 4 and len(set(rewards.tolist())) == 4  # without replacement
    np.testing.assert_array_equal(references, 0.5)
    holder = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    holder.memory = memory
    holder.save_weights(tmp_path / "m.weights.h5")
    expected = memory.sample(3)
    clone_holder = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    clone_holder.memory = controllers.ReplayMemory(capacity=4, feature_size=2, seed=0)
    clone_holder.load_weights(tmp_path / "m.weights.h5")  # contents and sampling stream
    for a, b in zip(expected, clone_holder.memory.sample(3), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="non-finite"):
        memory.add(np.full((1, 2), np.nan), [0], [1.0])


def test_state_features_by_hand():
    assert controllers.feature_size(num_statistics=2, history=3) == 3 * 4 + 2 + 2
    past = [np.array([[1.0, 3.0], [3.0, 1.0]])]  # column means 2, 2; spreads 1, 1
    state = controllers.state_features(past, np.zeros((2, 2)), np.array([0.5, -0.5]), 0.25, 3)
    assert state.shape == (2, 16)
    np.testing.assert_allclose(state[0, :4], [-1.0, 1.0, 0.5, 1.5], rtol=1e-6)  # padded step
    np.testing.assert_allclose(state[1, 8:12], [1.0, -1.0, 1.5, 0.5], rtol=1e-6)  # latest
    np.testing.assert_allclose(state[:, 14:], [[0.5, 0.25], [-0.5, 0.25]])
    # Pairs with different statistics get different states (they did not, before).
    assert not np.allclose(state[0, :12], state[1, :12])


def test_member_state_observes_and_keeps_its_history():
    controller = controllers.AlignmentController(controllers.feature_size(2, 3), seed=0)
    member = controller.add_member(2, 2, history=3, max_measurements=2)
    member.observe(np.array([[1.0, 3.0], [2.0, 2.0]]))
    member.observe(np.array([[2.0, 6.0], [4.0, 4.0]]))
    np.testing.assert_allclose(member.read("relative"), [[1.0, 1.0], [1.0, 1.0]], rtol=1e-6)
    assert member.features(np.zeros(2), 0.1).shape == (2, controller.feature_size)
    with pytest.raises(ValueError, match=r"shape \[2, 2\]"):
        member.observe(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="expects states of size"):
        controller.add_member(2, 1, history=3, max_measurements=2)


def test_a_transaction_reads_once_and_writes_back_on_leaving():
    controller = controllers.AlignmentController(controllers.feature_size(2, 3), seed=0)
    member = controller.add_member(2, 2, history=3, max_measurements=2)
    counters = member.arrays["counters"]
    with member.transaction():
        member.set_counter("decisions", 3)
        member.add_measurement(0.25)
        with member.transaction():  # nested: joins the outer one
            member.set_counter("decisions", member.counter("decisions") + 1)
        assert member.counter("decisions") == 4  # reads see the transaction's writes
        assert counters.numpy().tolist() == [0] * 8  # nothing written yet
    assert member.counter("decisions") == 4
    assert member.take_measurements() == [0.25]
    # An exception inside writes nothing; a value assigned to the variable from outside (a
    # restored checkpoint) is what the next transaction reads.
    with pytest.raises(RuntimeError), member.transaction():
        member.set_counter("decisions", 99)
        raise RuntimeError
    counters.assign(np.arange(8))
    with member.transaction():
        assert member.counter("decisions") == 5
        assert member.counter("next_decision") == 7


def test_policy_construction_runs_its_graphs_without_changing_anything():
    policy = controllers.Policy(6, seed=3)
    assert int(policy.optimizer.iterations.numpy()) == 0
    assert all(not np.any(v.numpy()) for v in policy.optimizer.variables[2:])  # Adam moments
    keep_bias = np.log(2 * 0.8 / 0.2)
    np.testing.assert_allclose(policy.network.layers[-1].bias.numpy(), [0, keep_bias, 0])
    twin = keras.Sequential.from_config(policy.network.get_config())
    twin.set_weights([keras.initializers.GlorotUniform(seed=3)(w.shape) for w in twin.weights])
    for actual, layer in zip(policy.network.layers, twin.layers, strict=True):
        np.testing.assert_array_equal(actual.kernel.numpy(), layer.kernel.numpy())


def test_feature_size_does_not_depend_on_the_number_of_parameters():
    for pairs in (45, 10):  # class pairs of 10 and of 5 classes
        past = [np.random.default_rng(pairs).random((pairs, 2))]
        state = controllers.state_features(past, np.zeros((pairs, 2)), np.zeros(pairs), 0.5, 10)
        assert state.shape == (pairs, controllers.feature_size(2, 10))


def _observe(member, metric, statistics, values, progress=0.0):
    return controllers.Observation(member, metric, statistics, values, progress)


def test_controller_rewards_each_member_against_the_group_mean():
    controller = controllers.AlignmentController(controllers.feature_size(1, 2), seed=0)
    members = [controller.add_member(3, 1, history=2, max_measurements=1) for _ in range(3)]
    stats = np.ones((3, 1)) * np.arange(1, 4)[:, None]
    first = controller.step([_observe(m, 0.5, stats, np.zeros(3)) for m in members])
    assert [reward for _, reward in first] == [None, None, None]  # nothing to reward yet
    assert all(m.pending is not None for m in members)
    second = controller.step(
        [
            _observe(m, metric, stats, np.zeros(3))
            for m, metric in zip(members, (0.4, 0.6, 0.4), strict=True)
        ]
    )  # error metric: lower is better
    assert [reward for _, reward in second] == [1.0, -1.0, 1.0]
    assert controller.memory.size == 9
    _, _, rewards, references = controller.memory.sample(9)
    np.testing.assert_allclose(references, 1 / 3, rtol=1e-6)  # the group mean reward
    advantages = controller.advantages(rewards, references)
    np.testing.assert_allclose(np.sort(np.unique(advantages)), [-4 / 3, 2 / 3], rtol=1e-6)


def test_a_lone_member_is_rewarded_against_the_moving_baseline():
    controller = controllers.AlignmentController(
        controllers.feature_size(1, 2), baseline_momentum=0.5, seed=0
    )
    member = controller.add_member(2, 1, history=2, max_measurements=1)
    stats = np.ones((2, 1))
    for metric in (0.5, 0.4, 0.3, 0.35):
        controller.step([_observe(member, metric, stats, np.zeros(2))])
    # rewards +1, +1, -1: the baseline starts at the first reward, then 0.5 * 1 + 0.5 * -1
    assert float(controller.baseline.numpy()) == pytest.approx(0.0)
    _, _, rewards, references = controller.memory.sample(6)
    assert np.isnan(references).all()
    np.testing.assert_allclose(controller.advantages(rewards, references), rewards)


@pytest.mark.slow
def test_policy_learns_to_raise_a_parameter_that_always_pays():
    """Synthetic environment: each member's metric improves when it raises its parameter."""
    controller = controllers.AlignmentController(
        controllers.feature_size(1, 2), policy=controllers.Policy(
            controllers.feature_size(1, 2), learning_rate=3e-3, seed=0, keep_prior=1 / 3
        ), seed=0,
    )  # fmt: skip
    members = [controller.add_member(1, 1, history=2, max_measurements=1) for _ in range(8)]
    rng = np.random.default_rng(0)
    metrics, values = np.ones(8), np.zeros(8)
    probe = controllers.state_features([rng.random((8, 1))], np.zeros((8, 1)), values, 0.0, 2)
    first = controller.policy.probabilities(probe)[:, 2].mean()
    for step in range(150):
        observations = [
            _observe(m, metrics[i], rng.random((1, 1)), values[i : i + 1], step / 150)
            for i, m in enumerate(members)
        ]
        results = controller.step(observations)
        moves = np.array([controller.moves(actions, 0.1)[0] for actions, _ in results])
        metrics = metrics - moves  # raising the parameter lowers the error
        values = np.clip(values + moves, -1, 1)
    last = controller.policy.probabilities(
        controllers.state_features([rng.random((8, 1))], np.zeros((8, 1)), values, 1.0, 2)
    )[:, 2].mean()
    assert first < 0.5 and last > 0.8, (first, last)


def test_random_walk_policy_ignores_its_state():
    policy = controllers.Policy.random_walk(10, keep_prior=0.6)
    probabilities = policy.probabilities(np.random.default_rng(0).normal(size=(5, 10)))
    np.testing.assert_allclose(probabilities, [[0.2, 0.6, 0.2]] * 5, rtol=1e-5)


def test_policy_starts_by_mostly_keeping_parameters():
    policy = controllers.Policy(10, seed=0)
    probabilities = policy.probabilities(np.zeros((5, 10)))
    np.testing.assert_allclose(probabilities[:, 1], 0.8, rtol=1e-5)
    uniform = controllers.Policy(10, seed=0, keep_prior=1 / 3).probabilities(np.zeros((1, 10)))
    np.testing.assert_allclose(uniform, 1 / 3, rtol=1e-5)
    with pytest.raises(ValueError, match=r"keep_prior must lie in \(0, 1\)"):
        controllers.Policy(10, keep_prior=1.0)


def test_policy_save_load_and_transfer(tmp_path):
    size = controllers.feature_size(2, 10)
    policy = controllers.Policy(size, seed=1)
    ten_class_states = controllers.state_features(
        [np.random.default_rng(0).random((45, 2))], np.zeros((45, 2)), np.zeros(45), 0.3, 10
    )
    policy.learn(ten_class_states, np.zeros(45, "int64"), np.ones(45))
    policy.save(tmp_path / "policy")
    assert json.loads((tmp_path / "policy" / "policy.json").read_text())["feature_size"] == 44
    loaded = controllers.Policy.load(tmp_path / "policy")
    np.testing.assert_allclose(
        loaded.probabilities(ten_class_states), policy.probabilities(ten_class_states), rtol=1e-6
    )
    five = controllers.state_features(
        [np.random.default_rng(1).random((10, 2))], np.zeros((10, 2)), np.zeros(10), 0.1, 10
    )
    assert loaded.act(five, greedy=True).shape == (10,)


def test_policy_load_refuses_a_foreign_config(tmp_path):
    (tmp_path / "policy.json").write_text(json.dumps({"class_name": "os.system"}))
    with pytest.raises(ValueError, match="not a saved ALA policy config"):
        controllers.Policy.load(tmp_path)


def test_updates_per_step_makes_that_many_policy_updates():
    controller = controllers.AlignmentController(
        controllers.feature_size(1, 2), updates_per_step=3, seed=0
    )
    member = controller.add_member(2, 1, history=2, max_measurements=1)
    for metric in (0.5, 0.4):
        controller.step([_observe(member, metric, np.ones((2, 1)), np.zeros(2))])
    assert int(controller.policy.optimizer.iterations.numpy()) == 3  # one rewarded decision
    with pytest.raises(ValueError, match="updates_per_step must be an integer >= 1"):
        controllers.AlignmentController(10, updates_per_step=0)
