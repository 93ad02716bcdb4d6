-- name: retention_purge_alerts
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

-- name: retention_purge_sms
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

-- name: retention_purge_audit
-- Security events, sign-in failures and audit log entries older than the audit period ($1 cutoff, $2 batch).
WITH security AS (
    DELETE FROM security_events
     WHERE id IN (SELECT id FROM security_events WHERE at <= $1 ORDER BY at LIMIT $2)
    RETURNING id
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
       (SELECT count(*) FROM sign_ins) AS sign_in_failures_deleted,
       (SELECT count(*) FROM audit) AS audit_log_deleted;

-- name: retention_record
-- Record one purge: who ran it and how much of each kind went (numbers only, never content).
INSERT INTO retention_purges (at, actor, counts) VALUES ($1, $2, $3);

-- name: retention_next_due
-- The earliest moment something becomes due ($1 precise period, $2 audit period); NULL when nothing ever will.
SELECT least(
    (SELECT min(closed_at) FROM alerts WHERE purged_at IS NULL AND closed_at IS NOT NULL) + $1::interval,
    (SELECT min(resolved_at) FROM sms_triage WHERE body <> '' OR phone <> '') + $1::interval,
    (SELECT min(at) FROM security_events) + $2::interval,
    (SELECT min(at) FROM sign_in_failures) + $2::interval,
    (SELECT min(at) FROM audit_log) + $2::interval);
