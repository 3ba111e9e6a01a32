"""The storage primitives that workers coordinate through: taking queued trials and retrying
stale ones happen once across processes, whatever storage holds the study."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from lrensemble.tuning.study import open_storage, requeue, retry_stale

TAKER = """
import json, sys
import optuna
from lrensemble.tuning.study import open_storage
study = optuna.load_study(study_name="s", storage=open_storage(sys.argv[1]))
taken = []
while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
    trial = study.ask()
    taken.append(trial.user_attrs.get("point"))
print(json.dumps(taken))
"""


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_processes_taking_queued_trials_never_take_one_twice(tmp_path, kind):
    """Four processes empty a queue of 120 trials as fast as they can. Plain SQLite through
    Python's driver hands the same trial to two of them now and then (its transactions begin
    at the first write); the storage `open_storage` makes never does."""
    url = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else f"journal:{tmp_path / 's.log'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    for point in range(120):
        study.enqueue_trial({"x": point}, user_attrs={"point": point})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TAKER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    taken = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        taken += [p for p in json.loads(out) if p is not None]  # None: a fresh trial at the end
    assert sorted(taken) == list(range(120))


def stale_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """A RUNNING trial whose worker has not beaten for an hour."""
    study.enqueue_trial({"x": 1.0}, user_attrs={"point": "p"})
    trial = study.ask()
    trial.suggest_float("x", 0, 2)
    trial.set_user_attr("heartbeat", time.time() - 3600)
    return study.get_trials(deepcopy=False)[trial.number]


def test_a_stale_trial_found_by_two_workers_is_queued_again_once(tmp_path):
    study = optuna.create_study(study_name="s", storage=open_storage(f"journal:{tmp_path}/s.log"))
    seen = stale_trial(study)  # both workers listed it as RUNNING
    assert requeue(study, seen) is True
    assert requeue(study, seen) is False  # the second finds it failed already
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].params == {} and trials[1].user_attrs == {"point": "p", "retry_of": 0}
    assert trials[1].system_attrs["fixed_params"] == {"x": 1.0}
    assert retry_stale(study, grace=60) == []  # nothing RUNNING is left to retry


def test_retry_stale_leaves_live_trials_alone(tmp_path):
    study = optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path}/s.db"))
    stale = stale_trial(study)
    live = study.ask()
    live.set_user_attr("heartbeat", time.time())
    assert retry_stale(study, grace=60) == [stale.number]
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]


def test_a_worker_is_known_dead_only_on_its_own_host():
    import subprocess as sp

    from lrensemble.tuning.study import HOST, worker_alive, worker_id

    dead = sp.Popen(["true"])
    dead.wait()
    assert worker_alive(worker_id())
    assert not worker_alive({"host": HOST, "pid": dead.pid})
    assert worker_alive({"host": "another-machine", "pid": dead.pid})  # cannot tell: alive
