-- name: insert_outbox
-- Queue messages for notifier channels (one statement for all of a transaction's messages) and wake the engines' outbox senders at commit.
WITH queued AS (
    INSERT INTO outbox (channel, recipient, template, payload, alert_id, dispatch_id, next_attempt_at, created_at)
    SELECT u.channel, u.recipient, u.template, u.payload, u.alert_id, u.dispatch_id, $1, $1
      FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::uuid[], $7::uuid[])
           WITH ORDINALITY AS u(channel, recipient, template, payload, alert_id, dispatch_id, n)
     ORDER BY u.n
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
  FROM due WHERE o.id = due.id
RETURNING o.id, o.channel, o.recipient, o.template, o.payload, o.alert_id, o.dispatch_id, o.attempts,
          o.created_at, o.provider_ref;

-- name: outbox_sent
-- Mark messages $1 sent at $2, each with its provider reference in $3.
UPDATE outbox o SET status = 'sent', sent_at = $2, provider_ref = u.ref, last_error = NULL
  FROM unnest($1::bigint[], $3::text[]) AS u(id, ref)
 WHERE o.id = u.id;

-- name: outbox_retry
-- Schedule another attempt after a failure (and give up the lease).
UPDATE outbox SET next_attempt_at = $2, last_error = $3, leased_until = NULL WHERE id = $1;

-- name: outbox_failed
-- Give up on a message.
UPDATE outbox SET status = 'failed', last_error = $2 WHERE id = $1;

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
