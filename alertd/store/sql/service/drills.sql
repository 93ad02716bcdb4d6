-- Drills (docs/drills.md): a drill alert belongs to nobody; its drills row says who started it, where, and at whom.

-- name: find_drill_place
-- Where a person drill is held: her last known fix (of any of her alerts), else her registered home; the person
-- row says whether she exists at all. Never her phone, never her device.
SELECT p.id AS person_id, p.region AS person_region,
       coalesce(f.lat, ST_Y(p.home::geometry)) AS lat, coalesce(f.lon, ST_X(p.home::geometry)) AS lon,
       CASE WHEN f.lat IS NOT NULL THEN f.accuracy_m ELSE p.home_accuracy_m END AS accuracy_m,
       CASE WHEN f.lat IS NOT NULL THEN 'last_fix' WHEN p.home IS NOT NULL THEN 'home' END AS origin
  FROM people p
  LEFT JOIN LATERAL (
      SELECT ST_Y(lf.location::geometry) AS lat, ST_X(lf.location::geometry) AS lon, lf.accuracy_m
        FROM alerts a JOIN location_fixes lf ON lf.alert_id = a.id
       WHERE a.person_id = p.id
       ORDER BY lf.fix_time DESC, lf.id DESC LIMIT 1) f ON true
 WHERE p.id = $1;

-- name: insert_drill
-- Record a drill ($1 id) of alert $2, started by $3 at $4, in region $5, at a 'place' or a 'person' ($6, $7).
INSERT INTO drills (id, alert_id, started_by, started_at, region, target, person_id)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: get_drill
-- One drill with its alert's state, if the caller may see it ($2 a supervisor's region, null for an admin); its end
-- is when it was ended by hand, or when its alert was closed (every dispatch resolved).
SELECT d.id, d.alert_id, d.started_by, d.started_at, coalesce(d.ended_at, a.closed_at) AS ended_at, d.ended_by,
       d.region, d.target, d.person_id, a.status AS alert_status,
       ST_Y(a.location::geometry) AS lat, ST_X(a.location::geometry) AS lon
  FROM drills d JOIN alerts a ON a.id = d.alert_id
 WHERE d.id = $1 AND ($2::text IS NULL OR d.region = $2);

-- name: lock_drill
-- Lock a drill row (after its alert: the one lock order) to end it.
SELECT id, alert_id, ended_at FROM drills WHERE id = $1 FOR UPDATE;

-- name: find_drill_alert
-- The alert of a drill the caller may act on ($2 a supervisor's region, null for an admin).
SELECT alert_id FROM drills WHERE id = $1 AND ($2::text IS NULL OR region = $2);

-- name: end_drill
-- Mark a drill ended by hand at $2 by $3.
UPDATE drills SET ended_at = $2, ended_by = $3 WHERE id = $1 AND ended_at IS NULL;

-- name: list_drills
-- Drills started in [$1, $2) ($2 null: up to now, the one just started included), of region $3 (null: all), oldest
-- first, with their alert's state.
SELECT d.id, d.alert_id, d.started_by, d.started_at, coalesce(d.ended_at, a.closed_at) AS ended_at, d.ended_by,
       d.region, d.target, d.person_id, a.status AS alert_status,
       ST_Y(a.location::geometry) AS lat, ST_X(a.location::geometry) AS lon
  FROM drills d JOIN alerts a ON a.id = d.alert_id
 WHERE d.started_at >= $1 AND ($2::timestamptz IS NULL OR d.started_at < $2) AND ($3::text IS NULL OR d.region = $3)
 ORDER BY d.started_at, d.id
 LIMIT $4;

-- name: list_drill_dispatches
-- Every dispatch of the drill alerts $1, in order, with the delivery of its dispatch SMS (the latest one's state,
-- as Twilio or the gateway reported it, else the outbox's).
SELECT d.id, d.alert_id, d.kind, d.responder_id, d.status, d.code, d.attempt, d.broadcast, d.created_at,
       d.ack_deadline, d.acknowledged_at, d.late_ack, d.expired_at, d.updated_at,
       sms.outbox_status AS sms_outbox, sms.state AS sms_state, sms.delivery AS sms_delivery,
       sms.sent_at AS sms_sent_at
  FROM dispatches d
  LEFT JOIN LATERAL (
      SELECT o.status AS outbox_status, o.sent_at, m.state, m.delivery
        FROM outbox o LEFT JOIN sms_messages m ON m.outbox_id = o.id
       WHERE o.dispatch_id = d.id AND o.channel = 'sms' AND o.template = 'dispatch'
       ORDER BY o.id DESC LIMIT 1) sms ON true
 WHERE d.alert_id = ANY($1::uuid[])
 ORDER BY d.alert_id, d.created_at, d.attempt, d.responder_id;

-- name: list_drill_open_dispatches
-- The dispatches of a drill alert a drill's end stands down: every one not resolved or already cancelled.
SELECT id, responder_id, code, status FROM dispatches
 WHERE alert_id = $1 AND status NOT IN ('resolved', 'cancelled')
 ORDER BY created_at, id;
