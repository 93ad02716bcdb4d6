-- The timeline, the outbox's writes, refusals and the audit log.

-- name: write_timeline_and_outbox
-- A transaction's timeline events ($2..$8) and outbox messages ($9..$14, due at $1) in one statement, each in the
-- order given (the events' own trigger tells the consoles). Every message about a drill alert carries
-- "drill": true, whatever path queued it, so every channel marks it (read by a subquery per message: an index
-- probe, never a join that a plan cached while alerts was small would run as a scan of every alert).
-- A console message is delivered by this transaction's commit: NOTIFY is transactional, so the consoles hear it
-- at commit, exactly when the engine could first have sent it, and never for a transaction rolled back. It is
-- recorded as sent (the outbox stays the record of what each responder was told) and costs no claim.
-- Any other message: with a lease ($15 seconds), it is inserted leased to this instance's own outbox sender, as
-- its claim would have leased it, and returned (id not NULL) for the caller to hand over after commit; should the
-- instance die first, the lease runs out and any instance's claim takes it. Without ($15 NULL), it waits for a
-- claim by any instance's outbox sender, woken at commit. The other rows returned only count the NOTIFYs.
WITH events AS (
    INSERT INTO alert_events (alert_id, at, type, dispatch_id, responder_id, actor, data)
    SELECT e.alert_id, e.at, e.type, e.dispatch_id, e.responder_id, e.actor, e.data
      FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::jsonb[])
           WITH ORDINALITY AS e(alert_id, at, type, dispatch_id, responder_id, actor, data, n)
     ORDER BY e.n
), queued AS (
    INSERT INTO outbox (channel, recipient, template, payload, alert_id, dispatch_id, next_attempt_at, created_at,
                        status, sent_at, attempts, leased_until)
    SELECT m.channel, m.recipient, m.template,
           CASE WHEN (SELECT a.drill FROM alerts a WHERE a.id = m.alert_id) THEN m.payload || '{"drill": true}'::jsonb
                ELSE m.payload END,
           m.alert_id, m.dispatch_id, $1::timestamptz, $1::timestamptz,
           o.status, o.sent_at, o.attempts, o.leased_until
      FROM unnest($9::text[], $10::text[], $11::text[], $12::jsonb[], $13::uuid[], $14::uuid[])
           WITH ORDINALITY AS m(channel, recipient, template, payload, alert_id, dispatch_id, n)
     CROSS JOIN LATERAL outbox_entry(m.channel, $1::timestamptz, $15::float8) AS o
     ORDER BY m.n
    RETURNING id, channel, recipient, template, payload, alert_id, dispatch_id, attempts, created_at, provider_ref
)
SELECT q.id, q.channel, q.recipient, q.template, q.payload, q.alert_id, q.dispatch_id, q.attempts, q.created_at,
       q.provider_ref
  FROM queued q WHERE q.channel <> 'console' AND $15::float8 IS NOT NULL
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(pg_notify('alertd_events', json_build_object(
           'type', 'notification', 'recipient', c.recipient, 'template', c.template, 'alert_id', c.alert_id,
           'dispatch_id', c.dispatch_id, 'payload', c.payload)::text))::int, NULL, NULL
  FROM (SELECT * FROM queued WHERE channel = 'console' ORDER BY id) AS c
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(pg_notify('alertd_wake', 'outbox'))::int, NULL, NULL
  FROM (SELECT 1 FROM queued WHERE channel <> 'console' AND $15::float8 IS NULL LIMIT 1) AS others;

-- name: open_refusal_episode
-- The episode of refusals of kind $2 from source $3 at $1: a new one (with a new event id) if none began in the last minute. Its row lock serialises refusals of one source and kind; `new` says whether to record the event.
WITH fresh AS (
    SELECT nextval(pg_get_serial_sequence('security_events', 'id')) AS id
)
INSERT INTO security_episodes AS e (kind, source, started_at, event_id)
SELECT $2, $3, $1, fresh.id FROM fresh
ON CONFLICT (kind, source) DO UPDATE
   SET started_at = CASE WHEN e.started_at <= $1 - interval '1 minute' THEN $1 ELSE e.started_at END,
       event_id = CASE WHEN e.started_at <= $1 - interval '1 minute' THEN EXCLUDED.event_id ELSE e.event_id END
RETURNING e.event_id, e.event_id = (SELECT id FROM fresh) AS new;

-- name: insert_refusal_event
-- Record the first refusal of an episode as security event $1 (kind $3, source $4, detail $5) at $2.
INSERT INTO security_events (id, at, last_at, kind, source, detail) VALUES ($1, $2, $2, $3, $4, $5);

-- name: count_refusal
-- One more refusal of the episode whose event is $1, at $2.
UPDATE security_events SET refusals = refusals + 1, last_at = greatest(last_at, $2) WHERE id = $1 RETURNING id;

-- name: insert_audit
-- Record who read or revealed what.
INSERT INTO audit_log (at, actor, action, alert_id, detail) VALUES ($1, $2, $3, $4, $5);

-- name: notify_wake
-- Wake every instance's engine now (the tables stay the truth; this only saves a poll interval).
SELECT pg_notify('alertd_wake', $1);
