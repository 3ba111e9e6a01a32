"""HDET in one process: the multipliers and permutations, the controller's math, the drop-in
one-cycle, simulated replicas (fan-out, converge, resume), hyperparameters, warm noisy init and
bad input."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrensemble.errors import CheckpointError, ParameterError
from lrensemble.methods.hdet import (
    Assignment,
    DropoutRate,
    HDETScheduler,
    LabelSmoothing,
    SimulatedHDET,
    WeightDecay,
    controller_update,
    decay_rate,
    multipliers,
    replica_weights,
    warm_noisy_init,
)

F64 = torch.float64


def mlp(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Dropout(dropout), nn.Linear(12, 3))


def simulated(n: int = 3, total: int = 12, lr: object = 0.3, **hdet) -> SimulatedHDET:
    base = mlp()
    models = [copy.deepcopy(base) for _ in range(n)]
    opts = [
        torch.optim.SGD([{"params": m[0].parameters()}, {"params": m[3].parameters()}], lr=0.1)
        for m in models
    ]
    return SimulatedHDET(models, opts, lr, total, **hdet)


def batches(step: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(100 + step)
    return [
        (torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)
    ]


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# -- spread ------------------------------------------------------------------------------------


def test_multipliers_are_evenly_spaced_with_mean_one():
    assert multipliers(1, 0.5).tolist() == [1.0]
    assert multipliers(2, 0.5).tolist() == [0.5, 1.5]
    rho = multipliers(4, 0.3)
    assert torch.allclose(rho, torch.tensor([0.7, 0.9, 1.1, 1.3], dtype=F64))
    assert math.isclose(float(rho.mean()), 1.0)
    with pytest.raises(ParameterError, match="spread"):
        multipliers(3, 1.0)
    with pytest.raises(ParameterError, match="replicas"):
        multipliers(0, 0.5)


def test_assignment_is_seeded_and_resumable():
    a, b = Assignment(5, 3, seed=7), Assignment(5, 3, seed=7)
    assert a.perms == b.perms and all(sorted(p) == list(range(5)) for p in a.perms)
    state = copy.deepcopy(a.state_dict())
    a.reshuffle()
    c = Assignment(5, 3, seed=0)
    c.load_state_dict(state)
    c.reshuffle()
    assert c.perms == a.perms
    with pytest.raises(CheckpointError, match="permutations"):
        Assignment(4, 3, seed=0).load_state_dict(state)


# -- controller --------------------------------------------------------------------------------


def test_weights_favour_the_lower_loss_and_ignore_diverged_replicas():
    w = replica_weights(torch.tensor([1.0, 0.9, float("nan")], dtype=F64), sigma=0.1)
    assert w[1] > w[0] > 0 and w[2] == 0 and math.isclose(float(w.sum()), 1.0)
    assert replica_weights(torch.full((2,), float("inf"), dtype=F64), 0.1).tolist() == [0.5, 0.5]


def test_decay_rate_reaches_the_floor_after_the_intervals_left():
    base, floor = torch.tensor([0.4, 1e-4], dtype=F64), torch.tensor([1e-3, 1e-3], dtype=F64)
    gamma = decay_rate(base, floor, intervals_left=7)
    assert math.isclose(float(base[0] * (1 - gamma[0]) ** 7), 1e-3, rel_tol=1e-9)
    assert gamma[1] == 0  # already below the floor: no decay


def update(losses, values, base, *, gamma=0.0, low=0.0, high=10.0):
    s = len(base)
    return controller_update(
        torch.tensor(losses, dtype=F64),
        torch.tensor(values, dtype=F64),
        torch.tensor(base, dtype=F64),
        torch.zeros(s, dtype=F64),
        beta=0.9,
        lam=0.5,
        sigma=0.1,
        gamma=torch.full((s,), gamma, dtype=F64),
        low=torch.full((s,), low, dtype=F64),
        high=torch.full((s,), high, dtype=F64),
    )


def test_controller_moves_the_base_toward_the_better_replicas_within_bounds():
    values = [[0.5, 1.5], [1.5, 0.5]]  # replica 0: low LR in slot 0, high in slot 1
    base, velocity = update([0.9, 1.0], values, [1.0, 1.0])  # replica 0 is better
    assert base[0] < 1.0 < base[1]
    assert velocity[0] < 0 < velocity[1]
    base, _ = update([1.0, 0.9], values, [1.0, 1.0])  # replica 1 is better
    assert base[0] > 1.0 > base[1]
    base, _ = update([0.0, 100.0], values, [1.0, 1.0], low=0.99, high=1.01)
    assert base.tolist() == [0.99, 1.01]
    base, _ = update([1.0, 1.0], values, [1.0, 1.0], gamma=0.25)  # no signal: pure decay
    assert torch.allclose(base, torch.tensor([0.75, 0.75], dtype=F64))


def test_scheduler_controller_follows_the_better_replica_and_stays_in_range():
    sim = simulated(n=2, total=40, lr=[0.3, 0.3], sync_every=4, warmup_steps=4, sigma=0.01)
    first = sim.schedulers[0]
    for _ in range(40):
        values = first.replica_values()[:, 0]
        # the replica with the higher LR in group 0 has the lower loss
        losses = [float(1.0 - v) for v in values]
        sim.step(losses)
        for s in sim.schedulers:
            lo, hi = s.floors, s.max_lrs
            assert all(lo[g] <= b <= hi[g] for g, b in enumerate(s.base_lr()))
    # the whole run: group 0 (rewarded for high LR) ends above group 1 (no signal: pure decay)
    base = first.base_lr()
    assert base[0] > 10 * base[1]
    assert math.isclose(base[1], first.floors[1], rel_tol=1e-6)


# -- the scheduler -----------------------------------------------------------------------------


def test_one_replica_is_onecycle_step_for_step():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    ref_opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = HDETScheduler(opt, 0.4, epochs=3, steps_per_epoch=7, pct_start=0.25, auto_lr=False)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        ref_opt, 0.4, epochs=3, steps_per_epoch=7, pct_start=0.25, cycle_momentum=False
    )
    assert sched.replicas == 1 and sched.rank == 0
    for _ in range(21):
        assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12)
        opt.step(), ref_opt.step()
        sched.step(1.0), ref.step()
    with pytest.raises(ParameterError, match="total_steps is 21"):
        sched.step(1.0)


def test_replicas_get_their_multipliers_and_every_group_its_own_permutation():
    sim = simulated(n=4, lr=[0.3, 0.1], spread=0.3, sync_every=3, auto_lr=False)
    rho = multipliers(4, 0.3)
    seen = set()
    for t in range(12):
        s0 = sim.schedulers[0]
        base = s0.base_lr()
        for r, s in enumerate(sim.schedulers):
            for g, lr in enumerate(s.get_last_lr()):
                k = s.assignment.index(g, r)
                assert lr == pytest.approx(float(rho[k]) * base[g], rel=1e-12)
                assert s.optimizer.param_groups[g]["lr"] == lr
            assert s.assignment.perms == s0.assignment.perms
        seen.add(tuple(map(tuple, s0.assignment.perms)))
        sim.train_step(batches(t, 4), F.cross_entropy)
    assert len(seen) >= 3  # a new draw at each sync
    assert any(p[0] != p[1] for p in seen)  # the groups are not tied to the same replicas


def test_parameters_are_equal_after_a_sync_and_differ_between():
    sim = simulated(n=3, sync_every=4, warmup_steps=4)
    for t in range(12):
        sim.train_step(batches(t, 3), F.cross_entropy)
        params = [flat(m) for m in sim.models]
        equal = all(torch.equal(params[0], p) for p in params[1:])
        assert equal == ((t + 1) % 4 == 0), t


def test_averaging_can_run_without_the_controller_and_is_resumable():
    def run(stop: int | None) -> tuple[list[torch.Tensor], SimulatedHDET]:
        sim = simulated(n=2, total=10, sync_every=3, warmup_steps=3, auto_lr=True)
        for t in range(10 if stop is None else stop):
            sim.train_step(batches(t, 2), F.cross_entropy)
        return [flat(m) for m in sim.models], sim

    _, half = run(5)
    states = []
    for m, o, s in zip(half.models, half.optimizers, half.schedulers, strict=True):
        buffer = io.BytesIO()
        torch.save((m.state_dict(), o.state_dict(), s.state_dict()), buffer)
        buffer.seek(0)
        states.append(torch.load(buffer, weights_only=True))
    resumed = simulated(n=2, total=10, sync_every=3, warmup_steps=3, auto_lr=True)
    for (ms, os_, ss), m, o, s in zip(
        states, resumed.models, resumed.optimizers, resumed.schedulers, strict=True
    ):
        m.load_state_dict(ms)
        o.load_state_dict(os_)
        s.load_state_dict(ss)
    for t in range(5, 10):
        resumed.train_step(batches(t, 2), F.cross_entropy)
    whole, _ = run(None)
    assert all(torch.equal(a, flat(m)) for a, m in zip(whole, resumed.models, strict=True))

    off = simulated(n=2, total=6, sync_every=3, auto_lr=False)
    for t in range(6):
        off.train_step(batches(t, 2), F.cross_entropy)
    assert torch.equal(flat(off.models[0]), flat(off.models[1]))
    with pytest.raises(CheckpointError, match="replicas"):
        off.schedulers[0].load_state_dict(half.schedulers[0].state_dict() | {"replicas": 3})


# -- hyperparameters ---------------------------------------------------------------------------


def test_hyperparameters_are_spread_applied_and_controlled():
    base = mlp(dropout=0.2)
    models = [copy.deepcopy(base) for _ in range(3)]
    opts = [torch.optim.AdamW(m.parameters(), lr=0.01) for m in models]
    hyper = [WeightDecay(0.01), DropoutRate(0.2, spread=0.4), LabelSmoothing(0.1)]
    sim = SimulatedHDET(
        models, opts, 0.01, 9, sync_every=3, warmup_steps=0, sigma=0.01, hyperparameters=hyper
    )
    for t in range(9):
        for r, (s, m, o) in enumerate(zip(sim.schedulers, models, opts, strict=True)):
            values = s.replica_values()
            assert o.param_groups[0]["weight_decay"] == pytest.approx(float(values[r, 1]))
            assert m[2].p == pytest.approx(float(values[r, 2])) == s.value("dropout")
            assert s.value("label_smoothing") == pytest.approx(float(values[r, 3]))
        assert len({s.value("label_smoothing") for s in sim.schedulers}) == 3
        sim.train_step(batches(t, 3), F.cross_entropy)
    s0 = sim.schedulers[0]
    assert s0._hyper_base != [0.01, 0.2, 0.1]  # the controller moved them
    assert all(0 <= v < 1 for v in s0._hyper_base)
    with pytest.raises(ParameterError, match="No hyperparameter 'temperature'"):
        s0.value("temperature")


def test_hyperparameter_ranges_are_checked():
    with pytest.raises(ParameterError, match="outside its range"):
        DropoutRate(0.8, spread=0.5)
    with pytest.raises(ParameterError, match="spread"):
        LabelSmoothing(0.1, spread=1.5)
    opt = torch.optim.SGD(mlp().parameters(), lr=0.1)
    with pytest.raises(ParameterError, match="no dropout module"):
        HDETScheduler(opt, 0.1, 10, model=nn.Linear(2, 2), hyperparameters=[DropoutRate(0.1)])
    with pytest.raises(ParameterError, match="spread once"):
        HDETScheduler(opt, 0.1, 10, hyperparameters=[WeightDecay(0.1), WeightDecay(0.2)])


# -- warm noisy init ---------------------------------------------------------------------------


def test_warm_noisy_init_is_relative_independent_and_reproducible():
    base = nn.Linear(400, 300)
    copies = [copy.deepcopy(base) for _ in range(3)]
    warm_noisy_init(copies[0], rank=0, seed=1, nu=0.01)
    warm_noisy_init(copies[1], rank=1, seed=1, nu=0.01)
    warm_noisy_init(copies[2], rank=0, seed=1, nu=0.01)
    delta = (copies[0].weight - base.weight).detach()
    rms = base.weight.detach().pow(2).mean().sqrt()
    assert float(delta.std() / rms) == pytest.approx(0.01, rel=0.02)
    assert torch.equal(copies[0].weight, copies[2].weight)
    assert not torch.equal(copies[0].weight, copies[1].weight)
    with pytest.raises(ParameterError, match="nu"):
        warm_noisy_init(base, rank=0, nu=-1.0)


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input_is_one_sentence():
    opt = torch.optim.SGD(mlp().parameters(), lr=0.1)
    with pytest.raises(ParameterError, match="total_steps, or both epochs"):
        HDETScheduler(opt, 0.1)
    with pytest.raises(ParameterError, match="max_lr has 2 values"):
        HDETScheduler(opt, [0.1, 0.2], 10)
    with pytest.raises(ParameterError, match="needs model="):
        HDETScheduler(opt, 0.1, 10, replicas=2, rank=0)
    with pytest.raises(ParameterError, match="rank must be in"):
        HDETScheduler(opt, 0.1, 10, replicas=2, rank=2, model=mlp())
    sched = HDETScheduler(opt, 0.1, 10, replicas=2, rank=0, model=mlp(), sync_every=1)
    with pytest.raises(ParameterError, match="not initialised"):
        sched.step(1.0)
    with pytest.raises(ParameterError, match="SimulatedHDET sets"):
        SimulatedHDET([mlp()], [opt], 0.1, 10, rank=0)
    sim = simulated(n=2, total=4, sync_every=2, warmup_steps=0)
    sim.step([None, None])
    with pytest.raises(ParameterError, match=r"call scheduler.step\(loss\)"):
        sim.step([None, None])
