-- Console accounts, sign-in, sessions and the supervisors' views.

-- name: insert_officer
-- Create a console account; nothing is returned when the username is taken.
INSERT INTO officers (username, password_hash, responder_id, role, language, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)
ON CONFLICT (username) DO NOTHING
RETURNING username;

-- name: get_officer
-- One console account with its responder's kind and region.
SELECT o.username, o.password_hash, o.responder_id, o.role, o.language, o.disabled_at, o.created_at,
       o.last_sign_in_at, r.kind AS responder_kind, r.region, r.name AS responder_name
  FROM officers o JOIN responders r ON r.id = o.responder_id
 WHERE o.username = $1;

-- name: list_officers
-- Every console account, by username.
SELECT o.username, o.responder_id, o.role, o.language, o.disabled_at, o.created_at, o.last_sign_in_at,
       r.kind AS responder_kind, r.region, r.name AS responder_name
  FROM officers o JOIN responders r ON r.id = o.responder_id
 ORDER BY o.username;

-- name: update_officer
-- Change an account; a null argument keeps the field ($7 true disables, false enables, null keeps).
UPDATE officers SET password_hash = coalesce($2, password_hash), responder_id = coalesce($3, responder_id),
       role = coalesce($4, role), language = coalesce($5, language),
       disabled_at = CASE WHEN $7::boolean IS NULL THEN disabled_at WHEN $7 THEN coalesce(disabled_at, $6) END,
       updated_at = $6
 WHERE username = $1
RETURNING username;

-- name: stamp_officer_sign_in
-- Stamp a successful sign-in.
UPDATE officers SET last_sign_in_at = $2 WHERE username = $1;

-- name: lock_sign_in_source
-- Take sign-in attempts from source $1 one at a time until the transaction ends, so parallel guesses count in turn.
SELECT pg_advisory_xact_lock(hashtextextended('alertd.sign_in:' || $1, 0));

-- name: forget_sign_in_failures
-- Drop source $1's failures from before $2: they no longer count.
DELETE FROM sign_in_failures WHERE source = $1 AND at <= $2;

-- name: insert_sign_in_failure
-- Remember a sign-in attempt as failed until its password is found right (for the limiter).
INSERT INTO sign_in_failures (at, username, source) VALUES ($1, $2, $3) RETURNING id;

-- name: count_sign_in_failures
-- Failed sign-ins from source $2: for username $1, and for any username, with the latest of each.
SELECT count(*) FILTER (WHERE username = $1) AS by_account, max(at) FILTER (WHERE username = $1) AS last_by_account,
       count(*) AS by_source, max(at) AS last_by_source
  FROM sign_in_failures WHERE source = $2;

-- name: clear_sign_in_failures
-- A successful sign-in forgives the username's failures from that source, never another source's.
DELETE FROM sign_in_failures WHERE username = $1 AND source = $2;

-- name: insert_officer_session
-- Open a console session.
INSERT INTO officer_sessions (id, username, created_at, expires_at) VALUES ($1, $2, $3, $4);

-- name: get_live_officer_session
-- A session that is neither ended nor past its end, with its account (when still enabled).
SELECT s.id, s.expires_at, o.username, o.responder_id, o.role, o.language, r.region
  FROM officer_sessions s JOIN officers o ON o.username = s.username JOIN responders r ON r.id = o.responder_id
 WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND o.disabled_at IS NULL;

-- name: end_officer_session
-- Sign out: end one session.
UPDATE officer_sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL;

-- name: end_officer_sessions
-- End every session of an account (its password, role or responder changed, or it was disabled).
UPDATE officer_sessions SET ended_at = $2 WHERE username = $1 AND ended_at IS NULL;

-- name: list_alert_responders
-- Where the responders dispatched to an alert are, for the alert map (names are of posts, not people).
SELECT DISTINCT r.id, r.kind, r.name, ST_Y(r.location::geometry) AS lat, ST_X(r.location::geometry) AS lon
  FROM dispatches d JOIN responders r ON r.id = d.responder_id
 WHERE d.alert_id = $1;

-- name: list_region_alerts
-- Open and unanswered alerts of region $1, plus the triage queue (no usable location, so maybe no region yet).
SELECT a.id, a.person_id, a.channel, a.status, a.priority, a.duress, a.triage, a.created_at, a.drill,
       coalesce(a.region, p.region) AS region, a.location_source, a.location_accuracy_m,
       (SELECT count(*) FROM dispatches d WHERE d.alert_id = a.id AND d.status = 'pending') AS pending,
       (SELECT count(*) FROM dispatches d WHERE d.alert_id = a.id AND d.expired_at IS NOT NULL) AS missed
  FROM alerts a LEFT JOIN people p ON p.id = a.person_id  -- a drill has no person (and is labelled: drill)
 WHERE a.status IN ('open', 'unanswered')
   AND (coalesce(a.region, p.region) = $1 OR (a.triage AND coalesce(a.region, p.region) IS NULL))
 ORDER BY a.duress DESC, (a.status = 'unanswered') DESC, a.created_at
 LIMIT 500;

-- name: list_region_deadlines
-- Dispatches of region $1 whose deadline passes before $2 (pending) or passed unanswered (expired, alert still open).
SELECT d.id, d.alert_id, d.kind, d.responder_id, d.status, d.code, d.ack_deadline, d.attempt, d.broadcast,
       d.created_at, a.duress, a.status AS alert_status, a.drill
  FROM dispatches d JOIN alerts a ON a.id = d.alert_id
 WHERE a.region = $1 AND a.status IN ('open', 'unanswered')
   AND ((d.status = 'pending' AND d.ack_deadline <= $2) OR (d.status = 'expired' AND d.acknowledged_at IS NULL))
 ORDER BY d.ack_deadline
 LIMIT 500;

-- name: list_region_escalations
-- Escalations, broadcasts and unanswered marks of region $1 since $2, newest first.
SELECT e.id, e.alert_id, e.at, e.type, e.dispatch_id, e.responder_id, e.data, a.drill
  FROM alert_events e JOIN alerts a ON a.id = e.alert_id
 WHERE a.region = $1 AND e.at >= $2
   AND e.type IN ('expired', 'escalated', 'escalation_dispatched', 'unanswered', 'no_responder')
 ORDER BY e.id DESC
 LIMIT 200;

-- name: list_region_notices
-- What was sent to the supervisors of region $1 since $2 (missed deadlines, unanswered, button supervision...).
SELECT o.id, o.template, o.payload, o.alert_id, o.dispatch_id, o.created_at, o.status
  FROM outbox o
 WHERE o.channel = 'console' AND o.recipient IN ('supervisor:' || $1, 'supervisor:unknown') AND o.created_at >= $2
 ORDER BY o.id DESC
 LIMIT 200;

-- name: list_region_outbox_failures
-- Messages to region $1's responders or supervisors that failed, or are being retried after an error.
SELECT o.id, o.channel, o.recipient, o.template, o.alert_id, o.dispatch_id, o.status, o.attempts,
       o.last_error, o.created_at, o.next_attempt_at
  FROM outbox o
  LEFT JOIN responders r ON r.id = o.recipient
  LEFT JOIN alerts a ON a.id = o.alert_id
 WHERE (o.status = 'failed' OR (o.status = 'pending' AND o.last_error IS NOT NULL))
   AND (r.region = $1 OR a.region = $1 OR o.recipient = 'supervisor:' || $1)
 ORDER BY o.id DESC
 LIMIT 200;

-- name: list_person_phones
-- A person's phone numbers: only for the admin's audited reveal.
SELECT phone FROM person_phones WHERE person_id = $1 ORDER BY phone;

-- name: list_responder_notices
-- Console notices of templates $3 sent to responder $1 since $2 (a caseworker's button supervision notices).
SELECT o.id, o.template, o.payload, o.alert_id, o.created_at
  FROM outbox o
 WHERE o.channel = 'console' AND o.recipient = $1 AND o.created_at >= $2 AND o.template = ANY($3::text[])
 ORDER BY o.id DESC
 LIMIT 100;
