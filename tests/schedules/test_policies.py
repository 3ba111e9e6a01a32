"""Every registered policy against its formula (written independently here with numpy) at many
points, and against torch's own scheduler where torch has one."""

from __future__ import annotations

import copy
import math
import multiprocessing
import operator
import pickle

import numpy as np
import pytest
import torch

from lrensemble import schedules
from lrensemble.errors import ParameterError, UnknownNameError

T = 100.0
TS = np.concatenate([np.linspace(0.0, T, 2001), [29.999, 30.0, 30.001, 45.0, 90.0]])


def cos_half(hi, lo, phase):
    return lo + (hi - lo) * (1 + np.cos(np.pi * phase)) / 2


def ref_multistep(t, max_lr, gamma, milestones):
    n = sum((t / T >= m).astype(int) for m in milestones)
    return max_lr * gamma**n


def ref_onecycle(t, max_lr, min_lr, pct_start, div_factor):
    p = pct_start * T
    up = max_lr + (max_lr / div_factor - max_lr) * (1 + np.cos(np.pi * t / p)) / 2
    down = cos_half(max_lr, min_lr, (t - p) / (T - p))
    return np.where(t <= p, up, down)


def ref_warmup_cosine(t, max_lr, min_lr, warmup):
    w = warmup * T
    return np.where(t < w, max_lr * t / w, cos_half(max_lr, min_lr, (t - w) / (T - w)))


def ref_composite(t, max_lr, min_lr, gamma, milestones, cycle_epochs):
    b = np.array([0.0, *milestones]) * T
    s = np.searchsorted(np.round(b, 9), np.round(t, 9), side="right") - 1
    tau = t - b[s]
    period = np.array(cycle_epochs)[s]
    phase = np.round(tau / period, 9) % 1.0
    return gamma**s * cos_half(max_lr, min_lr, phase)


def ref_cosine_restarts(t, max_lr, min_lr, cycle_epochs, cycle_mult):
    out = []
    for x in t:
        start, length = 0.0, cycle_epochs
        while x >= start + length - 1e-9:
            start += length
            length *= cycle_mult
        out.append(cos_half(max_lr, min_lr, (x - start) / length))
    return np.array(out)


def ref_cyclic(t, max_lr, min_lr, half_cycle_epochs, mode, gamma=1.0):
    cycle = np.floor(1 + t / (2 * half_cycle_epochs) + 1e-12)
    x = np.abs(t / half_cycle_epochs - 2 * cycle + 1)
    amp = (max_lr - min_lr) * np.maximum(0, 1 - x)
    if mode == "triangular2":
        amp = amp / 2 ** (cycle - 1)
    if mode == "exp_range":
        amp = amp * gamma**t
    return min_lr + amp


CASES = {
    "multistep": (
        dict(max_lr=0.1, gamma=0.2, milestones=[0.3, 0.6, 0.8]),
        lambda t, **p: ref_multistep(t, **p),
    ),
    "onecycle": (
        dict(max_lr=0.4, min_lr=0.001, pct_start=0.3, div_factor=25.0),
        lambda t, **p: ref_onecycle(t, **p),
    ),
    "warmup_cosine": (
        dict(max_lr=0.2, min_lr=0.01, warmup=0.05),
        lambda t, **p: ref_warmup_cosine(t, **p),
    ),
    "composite": (
        dict(max_lr=1.0, min_lr=0.2, gamma=0.1, milestones=[0.45, 0.9], cycle_epochs=[3, 2, 1]),
        lambda t, **p: ref_composite(t, **p),
    ),
    "constant": (dict(max_lr=0.3), lambda t, max_lr: np.full_like(t, max_lr)),
    "pat_parent": (
        dict(max_lr=0.2, decay_start=0.5, decay_end=0.9, final=0.01),
        lambda t, max_lr, decay_start, decay_end, final: np.interp(
            t / T, [decay_start, decay_end], [max_lr, final * max_lr]
        ),
    ),
    "linear": (
        dict(max_lr=0.5, min_lr=0.05),
        lambda t, max_lr, min_lr: max_lr + (min_lr - max_lr) * t / T,
    ),
    "exponential": (dict(max_lr=0.1, gamma=0.97), lambda t, max_lr, gamma: max_lr * gamma**t),
    "step": (
        dict(max_lr=0.1, step_epochs=30, gamma=0.5),
        lambda t, max_lr, step_epochs, gamma: max_lr * gamma ** np.floor(t / step_epochs + 1e-9),
    ),
    "inverse": (
        dict(max_lr=0.1, gamma=0.01, power=0.75),
        lambda t, max_lr, gamma, power: max_lr * (1 + gamma * t) ** -power,
    ),
    "poly": (
        dict(max_lr=0.1, min_lr=0.001, power=2.0),
        lambda t, max_lr, min_lr, power: min_lr + (max_lr - min_lr) * (1 - t / T) ** power,
    ),
    "cosine": (
        dict(max_lr=0.1, min_lr=0.002),
        lambda t, max_lr, min_lr: cos_half(max_lr, min_lr, t / T),
    ),
    "cosine_restarts": (
        dict(max_lr=0.1, min_lr=0.0, cycle_epochs=10, cycle_mult=2.0),
        lambda t, **p: ref_cosine_restarts(t, **p),
    ),
    "triangular": (
        dict(max_lr=0.1, min_lr=0.01, half_cycle_epochs=7),
        lambda t, **p: ref_cyclic(t, mode="triangular", **p),
    ),
    "triangular2": (
        dict(max_lr=0.1, min_lr=0.01, half_cycle_epochs=7),
        lambda t, **p: ref_cyclic(t, mode="triangular2", **p),
    ),
    "exp_range": (
        dict(max_lr=0.1, min_lr=0.01, half_cycle_epochs=7, gamma=0.98),
        lambda t, **p: ref_cyclic(t, mode="exp_range", **p),
    ),
    "piecewise": (
        dict(
            stages=[
                [0.25, {"name": "linear", "max_lr": 0.01, "min_lr": 0.1}],
                [1.0, {"name": "cosine", "max_lr": 0.1}],
            ]
        ),
        lambda t, stages: np.where(
            t < 25, 0.01 + (0.1 - 0.01) * t / 25, cos_half(0.1, 0.0, (t - 25) / 75)
        ),
    ),
    "scaled": (
        dict(policy={"name": "cosine", "max_lr": 0.1}, factor=0.01),
        lambda t, policy, factor: 0.01 * cos_half(0.1, 0.0, t / T),
    ),
}


def test_every_registered_policy_has_a_formula_test():
    assert sorted(CASES) == schedules.list_policies()


@pytest.mark.parametrize("name", sorted(CASES))
def test_policy_matches_its_formula(name):
    params, ref = CASES[name]
    policy = schedules.create(name, **params)
    ours = np.array([policy(t, T) for t in TS])
    np.testing.assert_allclose(ours, ref(TS, **params), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_spec_round_trip(name):
    policy = schedules.create(name, **CASES[name][0])
    again = schedules.from_spec(policy.spec())
    assert again == policy
    assert [again(t, T) for t in TS[::50]] == [policy(t, T) for t in TS[::50]]


@pytest.mark.parametrize("name", schedules.POLICIES.names())
def test_every_policy_pickles_through_its_spec(name):
    policy = schedules.create(name, **CASES[name][0])
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(policy, protocol=protocol))
        assert again == policy and again.spec() == policy.spec()
        assert [again(t, T) for t in TS[::25]] == [policy(t, T) for t in TS[::25]]
    assert copy.deepcopy(policy) == policy


def test_nested_policies_pickle():
    inner = schedules.create("composite", max_lr=1.0, min_lr=0.2)
    policy = schedules.create(
        "piecewise",
        stages=[[0.5, schedules.create("scaled", policy=inner, factor=0.1)], [1, inner]],
    )
    again = pickle.loads(pickle.dumps(policy))
    assert again == policy
    assert isinstance(again.params["stages"][0][1].params["policy"], schedules.Policy)
    assert [again(t, T) for t in TS[::10]] == [policy(t, T) for t in TS[::10]]


def test_an_unregistered_policy_refuses_to_pickle_but_copies():
    custom = schedules.Policy("mine", {"max_lr": 0.1}, lambda t, T: 0.1)
    with pytest.raises(pickle.PicklingError, match="not registered"):
        pickle.dumps(custom)
    assert copy.deepcopy(custom) is custom and copy.copy(custom) is custom


def test_a_spawned_process_computes_the_same_values():
    policies = [schedules.create(name, **CASES[name][0]) for name in sorted(CASES)]
    sample = operator.methodcaller("curve", T, 3)  # pickles by name: the policy travels as data
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        there = pool.map(sample, policies)
    assert there == [sample(p) for p in policies]


def test_reference_sample_values():
    ms = schedules.create("multistep", max_lr=0.1)
    assert ms(35, 100) == pytest.approx(0.02)
    assert ms(85, 100) == pytest.approx(0.0008)
    comp = schedules.create("composite", max_lr=1.0, min_lr=0.2)
    expected = {0: 1.0, 1.5: 0.6, 3: 1.0, 45: 0.1, 90: 0.01}
    for t, v in expected.items():
        assert comp(t, 100) == pytest.approx(v), t


# --- against torch's own schedulers --------------------------------------------------------------


def torch_lrs(make, steps, epoch_arg=None):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make(opt)
    out = []
    for i in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step() if epoch_arg is None else sched.step(epoch_arg(i + 1))
    return np.array(out)


def ours_per_step(policy, epochs, spe):
    return np.array([policy(i / spe, epochs) for i in range(int(epochs * spe))])


def test_multistep_matches_torch_per_epoch():
    epochs = 100
    p = schedules.create("multistep", max_lr=0.2, gamma=0.2, milestones=[0.3, 0.6, 0.8])
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [30, 60, 80], 0.2), epochs)
    np.testing.assert_allclose(ours_per_step(p, epochs, 1) / 0.2, ref, rtol=1e-12)


def test_step_and_exponential_match_torch_per_epoch():
    p = schedules.create("step", max_lr=1.0, step_epochs=7, gamma=0.5)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5), 50)
    np.testing.assert_allclose(ours_per_step(p, 50, 1), ref, rtol=1e-12)
    p = schedules.create("exponential", max_lr=1.0, gamma=0.95)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.95), 50)
    np.testing.assert_allclose(ours_per_step(p, 50, 1), ref, rtol=1e-10)


def test_cosine_linear_poly_match_torch_per_iteration():
    epochs, spe = 10, 37
    n = epochs * spe
    p = schedules.create("cosine", max_lr=1.0, min_lr=0.01)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, n, eta_min=0.01), n)
    np.testing.assert_allclose(ours_per_step(p, epochs, spe), ref, rtol=1e-7, atol=1e-12)
    p = schedules.create("linear", max_lr=1.0, min_lr=0.1)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.1, total_iters=n), n)
    np.testing.assert_allclose(ours_per_step(p, epochs, spe), ref, rtol=1e-7)
    p = schedules.create("poly", max_lr=1.0, power=2.0)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.PolynomialLR(o, n, power=2.0), n)
    np.testing.assert_allclose(ours_per_step(p, epochs, spe), ref, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("mult", [1, 2])
def test_cosine_restarts_matches_torch(mult):
    epochs, spe = 30, 10
    n = epochs * spe
    p = schedules.create(
        "cosine_restarts", max_lr=1.0, min_lr=0.05, cycle_epochs=4, cycle_mult=mult
    )
    ref = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 4 * spe, mult, 0.05), n
    )
    np.testing.assert_allclose(ours_per_step(p, epochs, spe), ref, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_matches_torch(mode):
    epochs, spe, half = 24, 10, 3
    n = epochs * spe
    extra = {"gamma": 0.9} if mode == "exp_range" else {}
    p = schedules.create(mode, max_lr=1.0, min_lr=0.1, half_cycle_epochs=half, **extra)

    def make(o):
        return torch.optim.lr_scheduler.CyclicLR(
            o,
            base_lr=0.1,
            max_lr=1.0,
            step_size_up=half * spe,
            mode=mode,
            gamma=0.9 ** (1 / spe),
            cycle_momentum=False,
        )

    np.testing.assert_allclose(ours_per_step(p, epochs, spe), torch_lrs(make, n), rtol=1e-7)


def test_onecycle_matches_torch_up_to_one_step():
    epochs, spe = 20, 100
    n = epochs * spe
    p = schedules.create("onecycle", max_lr=1.0, min_lr=1e-4, pct_start=0.3, div_factor=25)

    def make(o):
        return torch.optim.lr_scheduler.OneCycleLR(
            o,
            max_lr=1.0,
            total_steps=n,
            pct_start=0.3,
            anneal_strategy="cos",
            div_factor=25,
            final_div_factor=0.04 / 1e-4,
            cycle_momentum=False,
        )

    ours, ref = ours_per_step(p, epochs, spe), torch_lrs(make, n)
    assert ours[0] == pytest.approx(ref[0])
    # torch reaches the peak one step earlier and the floor at its last step rather than at T:
    # the curves differ by at most the LR's change over a couple of steps.
    max_step_change = np.abs(np.diff(ref)).max()
    assert np.abs(ours - ref).max() <= 2.5 * max_step_change
    assert np.abs(ours - ref).max() < 2e-3


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("cosine", dict(max_lr=-0.1), "max_lr must be > 0"),
        ("cosine", dict(max_lr=0.1, min_lr=0.2), "must not exceed max_lr"),
        ("multistep", dict(max_lr=0.1, milestones=[0.6, 0.3]), "strictly increasing"),
        ("multistep", dict(max_lr=0.1, milestones=[0.3, 1.2]), "lie in (0, 1)"),
        ("multistep", dict(max_lr=0.1, milestones=[0.0, 0.5]), "lie in (0, 1)"),
        ("composite", dict(max_lr=1, min_lr=0.2, cycle_epochs=[3, 0, 1]), "must be > 0"),
        ("composite", dict(max_lr=1, min_lr=0.2, cycle_epochs=[3, 2]), "must have 3 entries"),
        ("cosine_restarts", dict(max_lr=0.1, cycle_epochs=-2), "cycle_epochs must be > 0"),
        ("triangular", dict(max_lr=0.1, min_lr=0.0, half_cycle_epochs=0), "must be > 0"),
        ("onecycle", dict(max_lr="fast"), "must be a number"),
        ("onecycle", dict(max_lr=0.1, pct_start=1.0), "pct_start must be < 1"),
        ("onecycle", dict(max_lr=0.1, bogus=1), "has no parameter 'bogus'"),
        ("onecycle", dict(), "needs 'max_lr'"),
        ("piecewise", dict(stages=[[0.5, {"name": "constant", "max_lr": 0.1}]]), "end at 1.0"),
        ("scaled", dict(policy={"max_lr": 0.1}, factor=2), "'name' key"),
    ],
)
def test_invalid_parameters_raise_clear_errors(name, params, fragment):
    with pytest.raises(ParameterError) as info:
        schedules.create(name, **params)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_policy_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'onecycle'"):
        schedules.create("one_cycle", max_lr=0.1)


def test_nonpositive_total_epochs_is_an_error():
    with pytest.raises(ParameterError):
        schedules.create("constant", max_lr=0.1)(0, 0)
    with pytest.raises(ParameterError, match="positive and finite"):
        schedules.create("constant", max_lr=0.1)(0, math.inf)


def test_a_curve_has_at_most_max_curve_points():
    """A curve over any number of epochs is sampled at a bounded number of points."""
    from lrensemble.schedules.base import MAX_CURVE_POINTS

    policy = schedules.create("multistep", max_lr=0.1)
    ts, lrs = policy.curve(1e12)
    assert len(ts) == len(lrs) == MAX_CURVE_POINTS + 1 and ts[-1] == 1e12
    assert len(policy.curve(2, steps_per_epoch=10)[0]) == 21
    for bad in (math.nan, math.inf, 0, -1):
        with pytest.raises(ParameterError):
            policy.curve(bad)


def test_values_are_finite_and_non_negative_over_training():
    for name, (params, _) in CASES.items():
        policy = schedules.create(name, **params)
        values = [policy(t, T) for t in TS]
        assert all(math.isfinite(v) and v >= 0 for v in values), name
