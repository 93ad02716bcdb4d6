"""Faults on a real Patroni cluster under load (issue 13): three etcd members, two PostgreSQL+PostGIS nodes in
synchronous mode, `alertd serve` on the multi-host URL, 80 phones raising alerts at 10/s and 8 buttons pressing.

For each fault: every alert answered 201/200 and every press acknowledged is on the surviving primary with its
three dispatches, none twice; alerts refused meanwhile (503, never 500) were retried and committed once; every
deadline that came due (police posts have 15 s) fired exactly once; the time to the first commit is measured.
Slow (minutes): `scripts/test.sh -m slow tests/integration/test_ha_cluster.py`.
"""

from __future__ import annotations

import asyncio

import pytest

from alertd.local.cluster import TEST_TIMINGS, LocalHACluster, create_alertd_database
from tests.buttons_support import ADMIN, SERVICE, start_secured_broker
from tests.ha_support import Drill, drill_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
GOAL_S = 15.0  # first commit on the new primary within 15 s of the kill, with the test timings (ttl 10)


@pytest.fixture(scope="module")
async def ha(workdir):
    cluster = LocalHACluster(workdir / "ha")
    broker = None
    drill = None
    try:
        await asyncio.to_thread(cluster.start)
        url = await create_alertd_database(cluster)
        broker = await start_secured_broker(workdir / "ha-mqtt")
        drill = Drill(workdir / "ha", url, drill_settings(url, broker.user_url(*SERVICE), broker.user_url(*ADMIN)))
        await drill.populate(people=80, buttons=8)
        drill.serve()
        await drill.wait_ready()
        yield cluster, drill
    finally:
        if drill is not None:
            await asyncio.to_thread(drill.stop)
        if broker is not None:
            await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(cluster.stop)


async def _healed(cluster: LocalHACluster) -> None:
    """Every node and etcd member that a previous test killed runs again, and the cluster is in sync."""
    for i, process in enumerate(cluster.etcd.processes):
        if process is None:
            cluster.etcd.start_member(i)
    for node in cluster.nodes:
        if not node.alive:
            node.start()
    await asyncio.to_thread(cluster.wait_healthy, 240)


def _assert_clean(result) -> None:
    assert result.app_answered == result.app_sent, result.line()
    assert result.app_lost == 0 and result.app_doubled == 0, result.line()
    assert result.presses_acked > 0 and result.presses_lost == 0 and result.presses_doubled == 0, result.line()
    assert result.missing_dispatches == 0, result.line()
    assert result.deadlines_fired_twice == 0 and result.deadlines_not_fired == 0, result.line()
    assert result.successors_doubled == 0, result.line()
    assert 500 not in result.refused, result.line()


def _assert_clean_in(drill: Drill, result) -> None:
    try:
        _assert_clean(result)
    except AssertionError:
        print(drill.unusual_log_lines())
        raise


async def test_primary_killed_mid_burst(ha):
    cluster, drill = ha
    await _healed(cluster)
    leader = await asyncio.to_thread(cluster.wait_leader)
    result = await drill.run("kill -9 primary (Patroni and postmaster)", leader.kill)
    print(result.line())
    _assert_clean_in(drill, result)
    assert result.refused.get(503, 0) > 0  # the outage was seen, and answered as retryable
    assert result.deadlines_due_in_outage > 0  # deadlines came due while there was no primary, and fired once
    assert result.recovery_s is not None and result.recovery_s <= GOAL_S, result.line()
    assert TEST_TIMINGS.ttl == 10


async def test_clean_switchover(ha):
    cluster, drill = ha
    await _healed(cluster)
    result = await drill.run("patronictl switchover", cluster.switchover)
    print(result.line())
    _assert_clean_in(drill, result)
    assert result.longest_gap_s <= GOAL_S, result.line()


async def test_standby_dies(ha):
    """Without synchronous_mode_strict, Patroni stops waiting for the dead standby and writes go on."""
    cluster, drill = ha
    await _healed(cluster)
    leader = await asyncio.to_thread(cluster.wait_leader)
    standby = next(n for n in cluster.nodes if n is not leader)
    result = await drill.run("kill -9 synchronous standby", standby.kill)
    print(result.line())
    _assert_clean_in(drill, result)
    assert result.longest_gap_s <= GOAL_S, result.line()  # commits wait until Patroni stops requiring it
    assert await asyncio.to_thread(cluster.wait_leader) is leader  # no failover


async def test_etcd_loses_a_member(ha):
    cluster, drill = ha
    await _healed(cluster)
    leader = await asyncio.to_thread(cluster.wait_leader)
    result = await drill.run("kill -9 one etcd member", lambda: cluster.etcd.kill_member(0))
    print(result.line())
    _assert_clean_in(drill, result)
    assert result.longest_gap_s <= GOAL_S, result.line()
    assert await asyncio.to_thread(cluster.wait_leader) is leader  # quorum kept: no failover
