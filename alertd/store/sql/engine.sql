-- The engine's modules: deadlines, check-in timers, outbox, supervision, retention, and their versions.

-- name: claim_due_dispatches
-- Expire up to $2 pending dispatches whose deadline has passed, locking them so no other instance fires them.
-- The alert is locked too, without waiting: every other writer locks the alert first, then its dispatches, so
-- the engine never holds a dispatch while waiting for its alert (no deadlock with a cancel or an ack).
WITH due AS (
    SELECT d.id, a.drill FROM dispatches d JOIN alerts a ON a.id = d.alert_id
     WHERE d.status = 'pending' AND d.ack_deadline <= $1
     ORDER BY d.ack_deadline
     LIMIT $2
     FOR UPDATE OF d, a SKIP LOCKED
)
UPDATE dispatches d SET status = 'expired', expired_at = $1, updated_at = $1
  FROM due WHERE d.id = due.id
RETURNING d.id, d.alert_id, d.kind, d.responder_id, d.code, d.ack_deadline, d.attempt, d.broadcast, due.drill;

-- name: get_next_deadline
-- The earliest pending deadline, to know how long the engine may sleep.
SELECT min(ack_deadline) FROM dispatches WHERE status = 'pending';

-- name: claim_outbox
-- Lease up to $2 due messages for $3 seconds so no other instance takes them meanwhile (a crashed instance's lease
-- runs out), in one statement that is its own transaction: it holds the outbox module's version lock ($4 module)
-- while it claims, and leases nothing unless the recorded version is ours ($5). Always one row at least: every row
-- carries `recorded`, the version the database records; with nothing leased, that row's id is NULL.
WITH v AS MATERIALIZED (
    SELECT engine_version_shared($4) AS recorded
), due AS (
    SELECT id FROM outbox
     WHERE (SELECT recorded FROM v) = $5
       AND status = 'pending' AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)
     ORDER BY next_attempt_at, id
     LIMIT $2
     FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE outbox o SET leased_until = $1 + make_interval(secs => $3), attempts = o.attempts + 1
      FROM due WHERE o.id = due.id AND o.status = 'pending'
    RETURNING o.id, o.channel, o.recipient, o.template, o.payload, o.alert_id, o.dispatch_id, o.attempts,
              o.created_at, o.provider_ref
)
SELECT v.recorded, c.* FROM v LEFT JOIN claimed c ON true;

-- name: mark_outbox_sent
-- Mark messages $1 sent at $2, each with its provider reference in $3 (at its id's place in $1).
-- A condition on the queue, not a join with the ids: the queue's statistics are from its last vacuum, when it was
-- nearly empty, so a join was planned as a loop over the queue rescanning every id for each message (39,006
-- rows removed by the join filter for 198 messages, docs/benchmarks.md); `= ANY` tests each queued row once.
UPDATE outbox o SET status = 'sent', sent_at = $2, provider_ref = ($3::text[])[array_position($1::bigint[], o.id)],
                    last_error = NULL
 WHERE o.id = ANY($1::bigint[]) AND o.status = 'pending';

-- name: vacuum_outbox_queue
-- Remove the dead row versions the messages recorded since the last time left in the queue, index entries included
-- (INDEX_CLEANUP ON: the scans that read past them are index scans). SKIP_LOCKED: while another instance vacuums it,
-- nothing to do; TRUNCATE false: no exclusive lock on the queue that every group commit writes to.
VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON, TRUNCATE false) outbox_pending;

-- name: retry_outbox
-- Schedule another attempt after a failure (and give up the lease).
UPDATE outbox SET next_attempt_at = $2, last_error = $3, leased_until = NULL WHERE id = $1 AND status = 'pending';

-- name: fail_outbox
-- Give up on a message.
UPDATE outbox SET status = 'failed', last_error = $2 WHERE id = $1 AND status = 'pending';

-- name: get_outbox_next_due
-- When the next pending message is due (a leased one: when its lease runs out).
SELECT min(greatest(next_attempt_at, leased_until)) FROM outbox WHERE status = 'pending';

-- name: claim_silent_buttons
-- Buttons not heard from since $1 with no notice yet for this silence: mark them, at most $3, SKIP LOCKED.
WITH due AS (
    SELECT b.device_id FROM buttons b JOIN devices d ON d.id = b.device_id
     WHERE b.silent_notice_at IS NULL AND d.revoked_at IS NULL AND coalesce(b.last_seen_at, b.created_at) < $1
     ORDER BY coalesce(b.last_seen_at, b.created_at)
     LIMIT $3
     FOR UPDATE OF b SKIP LOCKED
)
UPDATE buttons b SET silent_notice_at = $2
  FROM due, devices d, people p
 WHERE b.device_id = due.device_id AND d.id = b.device_id AND p.id = d.person_id
RETURNING b.device_id, d.person_id, b.caseworker_id, b.last_seen_at, b.battery, p.region;

-- name: claim_low_battery_buttons
-- Buttons whose battery fell below $1 with no notice yet: mark them, at most $3, SKIP LOCKED.
WITH due AS (
    SELECT b.device_id FROM buttons b JOIN devices d ON d.id = b.device_id
     WHERE b.low_battery_notice_at IS NULL AND d.revoked_at IS NULL AND b.battery < $1
     LIMIT $3
     FOR UPDATE OF b SKIP LOCKED
)
UPDATE buttons b SET low_battery_notice_at = $2
  FROM due, devices d, people p
 WHERE b.device_id = due.device_id AND d.id = b.device_id AND p.id = d.person_id
RETURNING b.device_id, d.person_id, b.caseworker_id, b.last_seen_at, b.battery, p.region;

-- name: get_next_silence
-- The oldest last-seen of a button not yet reported silent (the engine sleeps until it plus the period).
SELECT min(coalesce(b.last_seen_at, b.created_at)) FROM buttons b JOIN devices d ON d.id = b.device_id
 WHERE b.silent_notice_at IS NULL AND d.revoked_at IS NULL;

-- name: purge_alerts
-- One batch of closed alerts past the precise period ($1 cutoff, $2 batch, $3 now): trail deleted, best location
-- coarsened to a 0.01-degree grid (about 1 km), her words and officers' notes removed, places in messages coarsened
-- (and their named place's distance and direction dropped).
WITH due AS (
    SELECT id FROM alerts
     WHERE purged_at IS NULL AND closed_at IS NOT NULL AND closed_at <= $1
       AND status NOT IN ('open', 'unanswered')
     ORDER BY closed_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), coarsened AS (
    UPDATE alerts a
       SET location = ST_SnapToGrid(a.location::geometry, 0.01)::geography,
           location_accuracy_m = CASE WHEN a.location IS NULL THEN a.location_accuracy_m
                                      ELSE greatest(coalesce(a.location_accuracy_m, 0), 1000) END,
           purged_at = $3
      FROM due WHERE a.id = due.id
    RETURNING a.id
), fixes AS (
    DELETE FROM location_fixes f USING due WHERE f.alert_id = due.id
    RETURNING f.id
), notes AS (
    UPDATE alert_events e SET data = (e.data - 'note') || '{"note_purged": true}'::jsonb
      FROM due WHERE e.alert_id = due.id AND e.data ? 'note'
    RETURNING e.id
), dispatch_notes AS (
    UPDATE dispatches d SET note = NULL FROM due WHERE d.alert_id = due.id AND d.note IS NOT NULL
    RETURNING d.id
), messages AS (
    UPDATE outbox o
       SET payload = o.payload - 'note'
                     || CASE WHEN jsonb_typeof(o.payload -> 'lat') = 'number'
                              AND jsonb_typeof(o.payload -> 'lon') = 'number'
                             THEN jsonb_build_object('lat', round((o.payload ->> 'lat')::numeric, 2),
                                                     'lon', round((o.payload ->> 'lon')::numeric, 2))
                             ELSE '{}'::jsonb END
                     -- "800 m N of X" is finer than 0.01 degree: only the place's names stay
                     || CASE WHEN jsonb_typeof(o.payload -> 'place') = 'object'
                             THEN jsonb_build_object('place', (o.payload -> 'place') - 'distance_m' - 'bearing')
                             ELSE '{}'::jsonb END
      FROM due WHERE o.alert_id = due.id AND (o.payload ? 'lat' OR o.payload ? 'note')
    RETURNING o.id
), sms_bodies AS (
    UPDATE sms_messages m SET body = ''
      FROM outbox o, due WHERE o.alert_id = due.id AND m.outbox_id = o.id AND m.body <> ''
    RETURNING m.outbox_id
)
SELECT (SELECT count(*) FROM coarsened) AS alerts_coarsened,
       (SELECT count(*) FROM fixes) AS location_fixes_deleted,
       (SELECT count(*) FROM notes) AS sms_notes_removed,
       (SELECT count(*) FROM dispatch_notes) AS dispatch_notes_removed,
       (SELECT count(*) FROM messages) AS message_places_coarsened,
       (SELECT count(*) FROM sms_bodies) AS sms_bodies_removed;

-- name: purge_sms
-- Inbound SMS nobody needs any more ($1 cutoff, $2 batch): resolved triage messages lose body and number; numbers
-- of senders nobody enrolled are forgotten once none of their alerts is open or closed after the cutoff.
WITH triage AS (
    UPDATE sms_triage SET body = '', phone = ''
     WHERE id IN (SELECT id FROM sms_triage WHERE resolved_at <= $1 AND (body <> '' OR phone <> '')
                   ORDER BY resolved_at LIMIT $2)
    RETURNING id
), contacts AS (
    DELETE FROM sms_contacts c
     WHERE c.phone IN (SELECT s.phone FROM sms_contacts s
                        WHERE s.created_at <= $1
                          AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.person_id = s.person_id
                                             AND (a.closed_at IS NULL OR a.closed_at > $1))
                        LIMIT $2)
    RETURNING c.phone
)
SELECT (SELECT count(*) FROM triage) AS sms_triage_removed,
       (SELECT count(*) FROM contacts) AS sms_contacts_removed;

-- name: purge_timer_fixes
-- Where she was while a timer ran ($1 cutoff, $2 batch): the fixes of timers checked in or expired before the cutoff
-- (an expired timer's alert keeps its own location, coarsened with the alert).
WITH fixes AS (
    DELETE FROM timer_fixes
     WHERE id IN (SELECT f.id FROM timer_fixes f JOIN timers t ON t.id = f.timer_id
                   WHERE t.status <> 'running' AND coalesce(t.checked_in_at, t.expired_at) <= $1
                   LIMIT $2)
    RETURNING id
)
SELECT (SELECT count(*) FROM fixes) AS timer_fixes_deleted;

-- name: purge_audit
-- Security events, refusal episodes (a source address and when it began refusing), sign-in failures and audit log
-- entries older than the audit period ($1 cutoff, $2 batch).
WITH security AS (
    DELETE FROM security_events
     WHERE id IN (SELECT id FROM security_events WHERE at <= $1 ORDER BY at LIMIT $2)
    RETURNING id
), episodes AS (
    DELETE FROM security_episodes
     WHERE (kind, source) IN (SELECT kind, source FROM security_episodes WHERE started_at <= $1
                               ORDER BY started_at LIMIT $2)
    RETURNING 1
), sign_ins AS (
    DELETE FROM sign_in_failures
     WHERE id IN (SELECT id FROM sign_in_failures WHERE at <= $1 ORDER BY at LIMIT $2)
    RETURNING id
), audit AS (
    DELETE FROM audit_log
     WHERE id IN (SELECT id FROM audit_log WHERE at <= $1 ORDER BY at LIMIT $2)
    RETURNING id
)
SELECT (SELECT count(*) FROM security) AS security_events_deleted,
       (SELECT count(*) FROM episodes) AS security_episodes_deleted,
       (SELECT count(*) FROM sign_ins) AS sign_in_failures_deleted,
       (SELECT count(*) FROM audit) AS audit_log_deleted;

-- name: record_purge
-- Record one purge: who ran it and how much of each kind went (numbers only, never content).
INSERT INTO retention_purges (at, actor, counts) VALUES ($1, $2, $3);

-- name: get_retention_next_due
-- The earliest moment something becomes due ($1 precise period, $2 audit period); NULL when nothing ever will.
SELECT least(
    (SELECT min(closed_at) FROM alerts WHERE purged_at IS NULL AND closed_at IS NOT NULL) + $1::interval,
    (SELECT min(resolved_at) FROM sms_triage WHERE body <> '' OR phone <> '') + $1::interval,
    (SELECT min(coalesce(t.checked_in_at, t.expired_at)) FROM timers t
      WHERE t.status <> 'running' AND EXISTS (SELECT 1 FROM timer_fixes f WHERE f.timer_id = t.id)) + $1::interval,
    (SELECT min(at) FROM security_events) + $2::interval,
    (SELECT min(started_at) FROM security_episodes) + $2::interval,
    (SELECT min(at) FROM sign_in_failures) + $2::interval,
    (SELECT min(at) FROM audit_log) + $2::interval);

-- name: hold_engine_version
-- Open a module's engine transaction: hold its version lock shared until commit, and read the recorded version ($1 module; NULL: never recorded).
SELECT engine_version_shared($1);

-- name: lock_engine_version
-- Take a module's version lock exclusively ($1 module): waits for every transaction that holds it shared, i.e. still runs the module under the version recorded so far.
SELECT pg_advisory_xact_lock(hashtextextended('alertd.engine:' || $1, 0));

-- name: record_engine_version
-- Record version $2 of module $1 at $3 unless an equal or newer one is recorded; the version when this call recorded it, else NULL.
INSERT INTO engine_versions AS e (module, version, recorded_at) VALUES ($1, $2, $3)
    ON CONFLICT (module) DO UPDATE SET version = EXCLUDED.version, recorded_at = EXCLUDED.recorded_at
    WHERE e.version < EXCLUDED.version
RETURNING version;

-- name: claim_due_timers
-- Claim up to $2 running timers due at $1 (SKIP LOCKED: another instance takes the rest) and mark them expired.
WITH due AS (
    SELECT id FROM timers WHERE status = 'running' AND due_at <= $1
     ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
UPDATE timers t SET status = 'expired', expired_at = $1 FROM due WHERE t.id = due.id
RETURNING t.id, t.person_id, t.device_id, t.channel, t.due_at;

-- name: get_next_timer_due
-- When the next running timer falls due.
SELECT min(due_at) FROM timers WHERE status = 'running';

-- name: set_timer_alert
-- The alert timer $1 raised.
UPDATE timers SET alert_id = $2 WHERE id = $1;

-- name: find_unanalyzed_alert_tables
-- The alert tables holding at least $1 rows that were never analyzed (by anyone: autovacuum or by hand).
SELECT relname FROM pg_stat_user_tables
 WHERE relname = ANY (ARRAY['alerts', 'dispatches', 'alert_events', 'location_fixes', 'alert_repeats'])
   AND last_analyze IS NULL AND last_autoanalyze IS NULL AND n_live_tup + n_dead_tup >= $1;

-- name: update_alert_statistics
-- Statistics for the tables every alert's reads go through by alert id.
ANALYZE alerts, dispatches, alert_events, location_fixes, alert_repeats;
