"""``data.num_workers: auto``: workers and torch threads chosen together, printed once."""

import re

import pytest
import torch

from segdil import threads
from segdil.config import load_config
from segdil.data.loader import build_loader
from segdil.errors import SegdilError
from segdil.threads import ThreadPlan, apply_thread_plan, available_cores, cgroup_cpu_limit, plan_threads


@pytest.fixture
def fresh_announce(monkeypatch):
    monkeypatch.setattr(threads, "_announced", False)
    monkeypatch.delenv("RANK", raising=False)
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64, 256])
@pytest.mark.parametrize("cuda", [False, True])
def test_auto_never_oversubscribes(cores, cuda):
    plan = plan_threads("auto", cores=cores, cuda=cuda, current_threads=cores)
    assert plan.auto and plan.cores == cores and plan.torch_threads >= 1 and plan.workers >= 0
    assert plan.workers + plan.torch_threads <= cores
    if not cuda:
        assert plan.workers + plan.torch_threads == cores  # every core used, none twice


def test_small_cpu_machines_load_data_in_the_training_process():
    assert plan_threads("auto", cores=2, cuda=False, current_threads=2) == ThreadPlan(cores=2, workers=0, torch_threads=2, auto=True)
    assert plan_threads("auto", cores=1, cuda=False, current_threads=1).workers == 0
    assert plan_threads("auto", cores=8, cuda=False, current_threads=8) == ThreadPlan(cores=8, workers=2, torch_threads=6, auto=True)
    assert plan_threads("auto", cores=8, cuda=True, current_threads=8).workers == 7


def test_torch_threads_are_lowered_never_raised():
    assert plan_threads("auto", cores=8, cuda=False, current_threads=3).torch_threads == 3  # OMP_NUM_THREADS=3 stays
    assert plan_threads("auto", cores=4, cuda=False, current_threads=16).torch_threads == 3  # a container quota below torch's count


def test_an_explicit_count_wins_and_leaves_torch_alone():
    plan = plan_threads(2, cores=2, cuda=False, current_threads=2)
    assert plan == ThreadPlan(cores=2, workers=2, torch_threads=2, auto=False)
    assert "data.num_workers: 2 from the config" in plan.line()


@pytest.mark.parametrize("value", [-1, "fast", True, 1.5, None])
def test_bad_worker_counts_are_one_line_errors_naming_the_value(value):
    with pytest.raises(SegdilError, match=re.escape(f"data.num_workers: {value!r} is not a worker count")):
        plan_threads(value, cores=2)


def test_the_config_default_is_auto_and_an_integer_or_auto_is_accepted():
    assert load_config(None).data.num_workers == "auto"
    assert load_config(None, ["data.num_workers=auto"]).data.num_workers == "auto"
    assert load_config(None, ["data.num_workers=3"]).data.num_workers == 3


@pytest.mark.parametrize("value, message", [("-1", "out of range"), ("fast", "'fast'"), ("1.5", "1.5")])
def test_the_config_refuses_other_values(value, message):
    with pytest.raises(SegdilError, match=message):
        load_config(None, [f"data.num_workers={value}"])


def test_the_loader_applies_the_plan_and_prints_it_once(fresh_announce, capsys):
    plan = plan_threads("auto")
    loader = build_loader(list(range(8)), 2, num_workers="auto", device=torch.device("cpu"))
    again = build_loader(list(range(8)), 2, num_workers="auto", device=torch.device("cpu"))
    assert loader.num_workers == again.num_workers == plan_threads("auto", cuda=False).workers
    assert torch.get_num_threads() <= max(1, available_cores() - loader.num_workers)
    err = capsys.readouterr().err
    assert err.count("threads: torch") == 1 and f"({plan.cores} cores)" in err


def test_other_ranks_print_nothing(fresh_announce, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    apply_thread_plan("auto", cuda=False)
    assert "threads:" not in capsys.readouterr().err


def test_local_ranks_share_the_cores(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    alone = available_cores()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert available_cores() == max(1, alone // 2)


def test_cgroup_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(v1) == 4
    assert cgroup_cpu_limit(tmp_path / "missing") is None
