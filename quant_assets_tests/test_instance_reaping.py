"""The CLI's instance hygiene on a real Dagster instance: dead runs reaped, a held pool waited for."""

import subprocess

import dagster as dg
import pytest

from quant_assets.lib.instance import POOL, own_run_tags, reap_dead_runs, wait_for_pool


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        inst.event_log_storage.initialize_concurrency_limit_to_default(POOL)  # as a run's first claim does
        yield inst


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job(), tags=tags)
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        dg.DagsterEventType.RUN_START.value, job_name=run.job_name, message="started"))
    return instance.get_run_by_id(run.run_id)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_run_whose_process_is_gone_is_marked_failed_and_its_slot_freed(instance):
    dead = _started_run(instance, {**own_run_tags(), "quant/pid": str(_dead_pid())})
    alive = _started_run(instance, own_run_tags())
    for run in (dead, alive):  # the dead run holds the one slot, the live one waits for it
        instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "step")
    reaped = reap_dead_runs(instance)
    assert [r.run_id for r in reaped] == [dead.run_id]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    info = instance.event_log_storage.get_concurrency_info(POOL)
    assert dead.run_id not in {s.run_id for s in info.claimed_slots} | {s.run_id for s in info.pending_steps}


def test_a_held_pool_is_waited_for_sleeping_and_named_once(instance):
    holder = _started_run(instance, own_run_tags())
    instance.event_log_storage.claim_concurrency_slot(POOL, holder.run_id, "step")
    said, naps = [], []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:  # the holder finishes its step
            instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)

    wait_for_pool(instance, said.append, sleep=nap)
    assert len(naps) == 3 and all(s >= 1.0 for s in naps), "it sleeps between looks, it does not spin"
    assert len(said) == 1 and holder.run_id in said[0] and "holds it" in said[0]


def test_a_free_pool_does_not_wait(instance):
    said = []
    assert wait_for_pool(instance, said.append, sleep=lambda s: pytest.fail("slept")) < 1.0
    assert said == []
