"""The outbox sender under faults: a crashed instance's lease runs out, provider errors back off, then give up."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from alertd.context import Context
from alertd.core.model import Location
from alertd.engine.outbox import LEASE_S, Outbox
from alertd.service import intake
from alertd.service.ports import Registry, SendError
from alertd.service.timeline import Batch, leasing
from alertd.store import queries
from alertd.store.db import connect, create_pool
from tests.helpers import all_at_once, app_alert, enrol, offset, seed_responders


class Recorder:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.sent = []
        self.fail_with = fail_with

    async def send(self, message):
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message.id)
        return f"ref-{message.id}"


async def _queue(db, clock, n=3):
    batch = Batch(clock.now())
    for i in range(n):
        batch.message("test", f"r-{i}", "dispatch", {"code": f"C{i}"})
    await batch.flush(db)


async def _lease_all(db, clock) -> list:
    """What another instance's outbox sender leases now (claim_outbox's rows, less its row that only carries the
    recorded version when nothing was due)."""
    rows = await db.fetch(queries.claim_outbox, clock.now(), 100, LEASE_S, Outbox.name, Outbox.version)
    return [row for row in rows if row["id"] is not None]


async def test_crashed_instance_lease_runs_out_then_sent_once(settings, clock, db):
    await _queue(db, clock)
    # instance A leases everything, then dies before sending
    assert len(await _lease_all(db, clock)) == 3
    notifier = Recorder()
    outbox = Outbox(Context(settings, clock), Registry({"test": notifier}))
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        assert await outbox.process_due(pool, clock.now()) == 0  # still leased: nobody else may send
        due = await outbox.next_due(pool)
        assert (due - clock.now()).total_seconds() == LEASE_S  # the engine sleeps until the lease ends
        clock.advance(LEASE_S)
        assert await outbox.process_due(pool, clock.now()) == 3
        assert await outbox.process_due(pool, clock.now()) == 0
    finally:
        await pool.close()
    assert sorted(notifier.sent) == sorted(r["id"] for r in await db.fetch("SELECT id FROM outbox"))
    rows = await db.fetch("SELECT status, provider_ref, attempts FROM outbox")
    assert {(r["status"], r["attempts"]) for r in rows} == {("sent", 2)}
    assert all(r["provider_ref"].startswith("ref-") for r in rows)


async def test_provider_errors_back_off_then_fail_and_permanent_errors_fail_at_once(settings, clock, db):
    await _queue(db, clock, n=1)
    flaky = Recorder(SendError("503 from provider"))
    ctx = Context(settings.replace(outbox_max_attempts=3), clock)
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        outbox = Outbox(ctx, Registry({"test": flaky}))
        for attempt, backoff in [(1, 2), (2, 4)]:
            assert await outbox.process_due(pool, clock.now()) == 1
            row = await db.fetchrow("SELECT status, attempts, next_attempt_at, last_error FROM outbox")
            assert (row["status"], row["attempts"]) == ("pending", attempt)
            assert (row["next_attempt_at"] - clock.now()).total_seconds() == backoff
            assert row["last_error"] == "503 from provider"
            assert await outbox.process_due(pool, clock.now()) == 0  # not before its backoff
            clock.advance(backoff)
        assert await outbox.process_due(pool, clock.now()) == 1
        assert await db.fetchval("SELECT status FROM outbox") == "failed"

        await _queue(db, clock, n=1)
        permanent = Outbox(ctx, Registry({"test": Recorder(SendError("21211 invalid number", retryable=False))}))
        assert await permanent.process_due(pool, clock.now()) == 1
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE status = 'failed'") == 2
    finally:
        await pool.close()


async def test_marking_sent_does_not_wait_for_a_transaction_holding_the_alert(settings, clock, db):
    """The deadline engine and officers' actions hold an alert (and its dispatch) FOR UPDATE while they work; the
    sender marks that alert's messages sent meanwhile. Marking moves each row to outbox_done: it must not check
    (and lock) the alert and dispatch it names again, or one held alert stalls the whole batch (issue 12)."""
    await seed_responders(db)
    person = await enrol(db, clock.now())
    ctx = Context(settings, clock)
    async with db.transaction():
        raised = await intake.create_alert(db, ctx, clock.now(), person_id=person.person_id, device_id=None,
                                           channel="app", client_alert_id="held-1", triggered_at=clock.now(),
                                           location=Location(*offset(1), 20.0, "gps", clock.now()))
    messages = await _lease_all(db, clock)
    assert any(m["dispatch_id"] is not None for m in messages)
    holder = await connect(settings.database_url)
    try:
        async with holder.transaction():
            await holder.fetch(queries.lock_alert, uuid.UUID(raised.alert_id))
            await holder.execute("SELECT 1 FROM dispatches WHERE alert_id = $1 FOR UPDATE", uuid.UUID(raised.alert_id))
            await asyncio.wait_for(db.execute(queries.mark_outbox_sent, [m["id"] for m in messages], clock.now(),
                                              [None] * len(messages)), timeout=5)
    finally:
        await holder.close()
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE status = 'sent' AND id = ANY($1::bigint[])",
                             [m["id"] for m in messages]) == len(messages)  # (console messages were sent at commit)


class HandRecorder:
    """An own sender that only records what it is handed (lease_s as the outbox's)."""

    lease_s = LEASE_S

    def __init__(self) -> None:
        self.handed: list = []

    def hand(self, rows: list) -> None:
        self.handed.append(rows)


async def test_a_groups_messages_are_leased_to_its_own_sender_at_commit_and_sent_without_a_claim(settings, clock,
                                                                                                  db):
    """No claim, no wake-up: the group's messages are leased to this instance's sender in the commit and handed
    over after it; nobody else can claim them meanwhile; the sender sends them and marks them sent."""
    await seed_responders(db)
    people = [await enrol(db, clock.now()) for _ in range(3)]
    ctx = Context(settings, clock)
    notifier = Recorder()
    outbox = Outbox(ctx, Registry({"sms": notifier, "mqtt": notifier, "log": notifier}))
    pool = await create_pool(settings.database_url, 1, 3)
    try:
        committer = intake.group_committer(pool, ctx, committers=1, sender=outbox)
        await all_at_once(committer, [app_alert(p, f"h-{i}", clock) for i, p in enumerate(people)])
        waiting = await db.fetch("SELECT id, leased_until, attempts FROM outbox WHERE status = 'pending'")
        assert waiting and {(r["leased_until"], r["attempts"]) for r in waiting} == {
            (clock.now() + timedelta(seconds=LEASE_S), 1)}
        assert sorted(m.id for m in outbox._handed) == sorted(r["id"] for r in waiting)
        assert await _lease_all(db, clock) == []  # another instance's claim finds nothing due
        assert await outbox.deliver_handed(pool) == len(waiting)
    finally:
        await pool.close()
    assert sorted(notifier.sent) == sorted(r["id"] for r in waiting)
    rows = await db.fetch("SELECT status, attempts FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in waiting])
    assert {(r["status"], r["attempts"]) for r in rows} == {("sent", 1)}


async def test_a_group_rolled_back_hands_nothing_over(settings, clock, db, monkeypatch):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    sender = HandRecorder()
    pool = await create_pool(settings.database_url, 1, 3)
    real_written = Batch.written

    def written_then_fail(self, rows):
        real_written(self, rows)
        raise RuntimeError("the group fails after its messages were written")

    monkeypatch.setattr(Batch, "written", written_then_fail)
    try:
        committer = intake.group_committer(pool, Context(settings, clock), committers=1, sender=sender)
        [answer] = await all_at_once(committer, [app_alert(person, "rolled-back", clock)])
    finally:
        await pool.close()
    assert isinstance(answer, RuntimeError)
    assert sender.handed == []
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0


async def test_messages_leased_to_an_instance_that_died_are_claimed_once_the_lease_runs_out(settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    dead = HandRecorder()  # committed and handed over, then the instance died before sending
    pool = await create_pool(settings.database_url, 1, 3)
    notifier = Recorder()
    survivor = Outbox(Context(settings, clock), Registry({"sms": notifier, "mqtt": notifier, "log": notifier}))
    try:
        committer = intake.group_committer(pool, Context(settings, clock), committers=1, sender=dead)
        await all_at_once(committer, [app_alert(person, "orphan", clock)])
        leased = [row["id"] for rows in dead.handed for row in rows]
        assert leased
        assert await survivor.process_due(pool, clock.now()) == 0
        clock.advance(LEASE_S)
        assert await survivor.process_due(pool, clock.now()) == len(leased)
    finally:
        await pool.close()
    assert sorted(notifier.sent) == sorted(leased)


async def test_what_was_handed_over_goes_before_what_is_claimed_later(settings, clock, db):
    """One recipient hears this instance's messages in the order they were committed: the handed-over message
    first, then one queued later for any instance's claim."""
    notifier = Recorder()
    outbox = Outbox(Context(settings, clock), Registry({"test": notifier}))
    batch = Batch(clock.now())
    batch.message("test", "r-1", "dispatch", {"code": "FIRST"})
    with leasing(outbox.lease_s) as leased:
        async with db.transaction():
            await batch.flush(db)
    outbox.hand(leased)
    later = Batch(clock.now())
    later.message("test", "r-1", "withdrawn", {"code": "FIRST"})
    await later.flush(db)
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        assert await outbox.process_due(pool, clock.now()) == 2
    finally:
        await pool.close()
    templates = {r["id"]: r["template"] for r in await db.fetch("SELECT id, template FROM outbox")}
    assert [templates[i] for i in notifier.sent] == ["dispatch", "withdrawn"]


async def test_the_handed_over_sender_goes_on_after_a_bug(settings, clock, db, monkeypatch):
    """A bug while sending what was handed over loses nothing for good (those messages stay leased, for a claim
    once the lease runs out) and does not stop the sender: what is handed over next is sent."""
    notifier = Recorder()
    outbox = Outbox(Context(settings, clock), Registry({"test": notifier}))
    attempts = []
    deliver = Outbox._deliver

    async def bug_first(self, pool, messages):
        attempts.append([m.id for m in messages])
        if len(attempts) == 1:
            raise RuntimeError("a bug")
        return await deliver(self, pool, messages)

    async def hand_one(code: str) -> int:
        batch = Batch(clock.now())
        batch.message("test", "r-1", "dispatch", {"code": code})
        with leasing(outbox.lease_s) as leased:
            async with db.transaction():
                await batch.flush(db)
        outbox.hand(leased)
        return leased[0]["id"]

    async def until(condition) -> None:
        while not condition():
            await asyncio.sleep(0.01)

    monkeypatch.setattr(Outbox, "_deliver", bug_first)
    pool = await create_pool(settings.database_url, 1, 2)
    sender = asyncio.create_task(outbox.send_handed(pool, gather_s=0))
    try:
        lost = await hand_one("FIRST")
        await asyncio.wait_for(until(lambda: len(attempts) == 1), 5)
        second = await hand_one("SECOND")
        await asyncio.wait_for(until(lambda: second in notifier.sent), 5)
    finally:
        sender.cancel()
        await pool.close()
    assert notifier.sent == [second]
    assert await db.fetchval("SELECT status FROM outbox WHERE id = $1", lost) == "pending"  # leased, for a claim


async def _queue_vacuums(db) -> int:
    """VACUUMs of the queue partition run by a client (autovacuum's are counted apart)."""
    return await db.fetchval("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox_pending'")


async def test_the_sender_clears_the_dead_rows_its_messages_leave_in_the_queue(settings, clock, db):
    """Every message recorded moves out of `outbox_pending` and leaves a dead row version there, which each claim
    reads past until a vacuum. The sender vacuums the queue itself after every `vacuum_after` messages it recorded,
    instead of leaving it to autovacuum's minute (docs/benchmarks.md: marking sent had become the dearest statement)."""
    await _queue(db, clock, n=5)
    pool = await create_pool(settings.database_url, 1, 2)
    outbox = Outbox(Context(settings, clock), Registry({"test": Recorder()}), vacuum_after=8)
    try:
        vacuums = await _queue_vacuums(db)
        assert await outbox.process_due(pool, clock.now()) == 5
        await outbox.stop()
        assert await _queue_vacuums(db) == vacuums  # 5 recorded, fewer than 8: not yet
        await _queue(db, clock, n=3)
        assert await outbox.process_due(pool, clock.now()) == 3
        await outbox.stop()
        assert await _queue_vacuums(db) == vacuums + 1
    finally:
        await pool.close()
    assert {r["status"] for r in await db.fetch("SELECT status FROM outbox")} == {"sent"}



async def test_each_message_marked_sent_keeps_its_own_provider_reference(settings, clock, db):
    """One statement marks a batch sent: each row gets the reference its provider gave for it, not a neighbour's."""
    await _queue(db, clock, n=7)
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        assert await Outbox(Context(settings, clock), Registry({"test": Recorder()})).process_due(pool, clock.now()) == 7
    finally:
        await pool.close()
    rows = await db.fetch("SELECT id, status, provider_ref FROM outbox")
    assert len(rows) == 7 and all(r["status"] == "sent" and r["provider_ref"] == f"ref-{r['id']}" for r in rows)
