"""The paper's grid, the torch LRScheduler adapter and the curve plot."""

from __future__ import annotations

import pytest
import torch

from lrensemble import schedules
from lrensemble.errors import CheckpointError, ParameterError, UnknownNameError


def test_table1_has_the_papers_sixteen_policies():
    grid = schedules.grid("table1")
    assert len(grid) == 16
    by_name: dict[str, list[float]] = {}
    for p in grid:
        by_name.setdefault(p.name, []).append(p.params["max_lr"])
    assert by_name == {
        "multistep": [0.2, 0.1, 0.05, 0.01],
        "onecycle": [0.4, 0.2, 0.1, 0.05],
        "warmup_cosine": [0.2, 0.1, 0.05, 0.01],
        "composite": [1.0, 0.5, 0.25, 0.05],
    }
    for p in grid:
        if p.name == "composite":
            assert p.params["min_lr"] == pytest.approx(p.params["max_lr"] / 5)


def test_grid_scales_every_lr_by_one_factor():
    base, small = schedules.grid("table1"), schedules.grid("table1", scale=0.01)
    for a, b in zip(base, small, strict=True):
        for t in (0.0, 10.0, 47.0, 99.0):
            assert b(t, 100) == pytest.approx(0.01 * a(t, 100))


def test_unknown_grid_and_bad_scale():
    with pytest.raises(UnknownNameError):
        schedules.grid("table9")
    with pytest.raises(ParameterError):
        schedules.grid("table1", scale=0)


def make_optimizer():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    return torch.optim.SGD(
        [{"params": a.parameters()}, {"params": b.parameters(), "lr_scale": 0.1}],
        lr=123.0,
        momentum=0.9,
    )


def test_scheduler_sets_every_groups_lr_every_iteration_with_scales():
    opt = make_optimizer()
    policy = schedules.create("onecycle", max_lr=0.4)
    sched = schedules.PolicyScheduler(opt, policy, epochs=3, steps_per_epoch=4)
    for i in range(12):
        t = i / 4
        assert opt.param_groups[0]["lr"] == pytest.approx(policy(t, 3))
        assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * policy(t, 3))
        opt.step()
        sched.step()


def test_scheduler_state_dict_round_trip_resumes_the_same_curve():
    opt = make_optimizer()
    policy = schedules.create("composite", max_lr=1.0, min_lr=0.2)
    sched = schedules.PolicyScheduler(opt, policy, epochs=10, steps_per_epoch=5)
    for _ in range(17):
        opt.step()
        sched.step()
    state = sched.state_dict()
    # Plain values only: loads under weights_only.
    buf = __import__("io").BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    opt2 = make_optimizer()
    sched2 = schedules.PolicyScheduler(opt2, policy, epochs=10, steps_per_epoch=5)
    sched2.load_state_dict(state)
    for _ in range(10):
        opt.step()
        sched.step()
        opt2.step()
        sched2.step()
        assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_lr_at_reads_any_step_and_seek_resumes_where_stepping_leads():
    policy = schedules.create("onecycle", max_lr=0.4)
    opt = make_optimizer()
    sched = schedules.PolicyScheduler(opt, policy, epochs=3, steps_per_epoch=4)
    for step in range(13):
        assert sched.lr_at(step) == pytest.approx([policy(step / 4, 3), 0.1 * policy(step / 4, 3)])
    assert sched.last_epoch == 0  # reading moves nothing
    for k in (0, 1, 5, 12):
        stepped_opt = make_optimizer()
        stepped = schedules.PolicyScheduler(stepped_opt, policy, epochs=3, steps_per_epoch=4)
        for _ in range(k):
            stepped_opt.step()
            stepped.step()
        for sought_opt, sought in (
            (opt, sched),
            (make_optimizer(), None),
        ):
            if sought is None:  # or start there
                sought = schedules.PolicyScheduler(
                    sought_opt, policy, epochs=3, steps_per_epoch=4, start_step=k
                )
            else:
                sought.seek(k)
            assert sought.state_dict() == stepped.state_dict()
            assert [g["lr"] for g in sought_opt.param_groups] == [
                g["lr"] for g in stepped_opt.param_groups
            ]
            assert sought.get_last_lr() == sought.lr_at(k)
            sought_opt.step()
            sought.step()  # and go on from there as the stepped one does
            assert sought.get_last_lr() == sought.lr_at(k + 1)


@pytest.mark.parametrize("step", [-1, 1.5, True, "3"])
def test_seek_refuses_what_is_not_a_step(step):
    sched = schedules.PolicyScheduler(
        make_optimizer(), schedules.create("cosine", max_lr=0.1), epochs=2
    )
    with pytest.raises(ParameterError, match="step"):
        sched.seek(step)


def test_scheduler_refuses_state_of_another_policy():
    opt = make_optimizer()
    sched = schedules.PolicyScheduler(opt, schedules.create("cosine", max_lr=0.1), epochs=10)
    other = schedules.PolicyScheduler(
        make_optimizer(), schedules.create("cosine", max_lr=0.2), epochs=10
    )
    with pytest.raises(CheckpointError, match="saved for policy"):
        other.load_state_dict(sched.state_dict())


def test_scheduler_rejects_mismatched_group_scales():
    with pytest.raises(ParameterError, match="2 parameter groups"):
        schedules.PolicyScheduler(
            make_optimizer(), schedules.create("cosine", max_lr=0.1), epochs=1, group_scales=[1]
        )


def test_plot_writes_a_png(tmp_path):
    out = schedules.plot_policies(schedules.grid("table1"), tmp_path / "fig" / "table1.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.parent.glob(".*tmp*"))
