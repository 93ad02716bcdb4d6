-- name: write_timeline_and_outbox
-- A transaction's timeline events ($2..$8) and outbox messages ($9..$14, due at $1) in one statement, each in the order given; wakes the engines' outbox senders at commit if a message was queued (the events' own trigger tells the consoles).
WITH events AS (
    INSERT INTO alert_events (alert_id, at, type, dispatch_id, responder_id, actor, data)
    SELECT e.alert_id, e.at, e.type, e.dispatch_id, e.responder_id, e.actor, e.data
      FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::jsonb[])
           WITH ORDINALITY AS e(alert_id, at, type, dispatch_id, responder_id, actor, data, n)
     ORDER BY e.n
), queued AS (
    INSERT INTO outbox (channel, recipient, template, payload, alert_id, dispatch_id, next_attempt_at, created_at)
    SELECT m.channel, m.recipient, m.template, m.payload, m.alert_id, m.dispatch_id, $1, $1
      FROM unnest($9::text[], $10::text[], $11::text[], $12::jsonb[], $13::uuid[], $14::uuid[])
           WITH ORDINALITY AS m(channel, recipient, template, payload, alert_id, dispatch_id, n)
     ORDER BY m.n
    RETURNING 1
)
SELECT pg_notify('alertd_wake', 'outbox') FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued;

-- name: claim_outbox
-- Lease up to $2 due messages for $3 seconds so no other instance takes them meanwhile (a crashed instance's lease runs out).
WITH due AS (
    SELECT id FROM outbox
     WHERE status = 'pending' AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)
     ORDER BY next_attempt_at, id
     LIMIT $2
     FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET leased_until = $1 + make_interval(secs => $3), attempts = o.attempts + 1
  FROM due WHERE o.id = due.id AND o.status = 'pending'
RETURNING o.id, o.channel, o.recipient, o.template, o.payload, o.alert_id, o.dispatch_id, o.attempts,
          o.created_at, o.provider_ref;

-- name: outbox_sent
-- Mark messages $1 sent at $2, each with its provider reference in $3.
UPDATE outbox o SET status = 'sent', sent_at = $2, provider_ref = u.ref, last_error = NULL
  FROM unnest($1::bigint[], $3::text[]) AS u(id, ref)
 WHERE o.id = u.id AND o.status = 'pending';

-- name: outbox_retry
-- Schedule another attempt after a failure (and give up the lease).
UPDATE outbox SET next_attempt_at = $2, last_error = $3, leased_until = NULL WHERE id = $1 AND status = 'pending';

-- name: outbox_failed
-- Give up on a message.
UPDATE outbox SET status = 'failed', last_error = $2 WHERE id = $1 AND status = 'pending';

-- name: outbox_next_due
-- When the next pending message is due (a leased one: when its lease runs out).
SELECT min(greatest(next_attempt_at, leased_until)) FROM outbox WHERE status = 'pending';

-- name: outbox_depth
-- Messages waiting or failed, by channel (for /metrics).
SELECT channel, status, count(*) AS n FROM outbox WHERE status <> 'sent' GROUP BY channel, status;

-- name: notify_wake
-- Wake every instance's engine now (the tables stay the truth; this only saves a poll interval).
SELECT pg_notify('alertd_wake', $1);

-- name: notify_console
-- Push messages to every instance's console feed, in order.
SELECT pg_notify('alertd_events', body) FROM unnest($1::text[]) WITH ORDINALITY AS u(body, n) ORDER BY n;

-- name: vacuum_settings
-- The server's autovacuum switch and naptime (seconds): the queues need frequent vacuuming.
SELECT (SELECT setting FROM pg_settings WHERE name = 'autovacuum') AS autovacuum,
       (SELECT setting FROM pg_settings WHERE name = 'autovacuum_naptime') AS naptime_s;
