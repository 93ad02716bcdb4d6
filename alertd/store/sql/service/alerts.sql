-- Alerts: intake, repeats, state changes, location trails, cancelling, reading.

-- name: insert_alerts
-- Create a group of alerts at $1, each with its best location ($11..$15, NULL: none, so triage) and region, its fixes ($16..$21), its first dispatches ($22..$28), and the transaction's timeline events ($29..$35) and outbox messages ($36..$41, lease $42) as write_timeline_and_outbox writes them, in one statement. An alert whose device already sent its client_alert_id is skipped with its fixes, dispatches, events and messages; a dispatch whose code is taken is skipped with its events and messages (the caller draws again and writes those). Returns what was made: ('alert', made_id), ('dispatch', made_id) and the leased messages ('message', id and the message's columns), as write_timeline_and_outbox returns them.
-- The timeline and the outbox are written here, not by a statement of their own, to save each group a round trip
-- (docs/benchmarks.md). A message's drill flag comes from its alert's channel in this group: the alerts inserted
-- above are not yet visible to this statement's reads.
WITH given AS (
    SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
                         $8::boolean[], $9::boolean[], $10::text[], $11::float8[], $12::float8[], $13::real[],
                         $14::text[], $15::timestamptz[])
           WITH ORDINALITY AS u(id, person_id, device_id, channel, client_alert_id, triggered_at, stale_token,
                                verified, region, lon, lat, accuracy_m, source, fix_time, n)
), created AS (
    INSERT INTO alerts (id, person_id, device_id, channel, client_alert_id, triggered_at, created_at, stale_token,
                        verified, region, triage, location, location_accuracy_m, location_source, location_fix_time)
    SELECT u.id, u.person_id, u.device_id, u.channel, u.client_alert_id, u.triggered_at, $1, u.stale_token,
           u.verified, u.region, u.lon IS NULL, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)::geography,
           u.accuracy_m, u.source, u.fix_time
      FROM given u
     ORDER BY u.n
    ON CONFLICT (device_id, client_alert_id) DO NOTHING
    RETURNING id
), fixes AS (
    INSERT INTO location_fixes (alert_id, location, accuracy_m, source, fix_time, received_at)
    SELECT f.alert_id, ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326)::geography, f.accuracy_m, f.source, f.fix_time,
           $1
      FROM unnest($16::uuid[], $17::float8[], $18::float8[], $19::real[], $20::text[], $21::timestamptz[])
           WITH ORDINALITY AS f(alert_id, lon, lat, accuracy_m, source, fix_time, n)
      JOIN created c ON c.id = f.alert_id
     ORDER BY f.n
), dispatched AS (
    INSERT INTO dispatches (id, alert_id, kind, responder_id, code, attempt, broadcast, distance_m,
                            ack_deadline, created_at, updated_at)
    SELECT d.id, d.alert_id, d.kind, d.responder_id, d.code, 1, false, d.distance_m, d.deadline, $1, $1
      FROM unnest($22::uuid[], $23::uuid[], $24::text[], $25::text[], $26::text[], $27::real[], $28::timestamptz[])
           WITH ORDINALITY AS d(id, alert_id, kind, responder_id, code, distance_m, deadline, n)
      JOIN created c ON c.id = d.alert_id
     ORDER BY d.n
    ON CONFLICT (code) DO NOTHING
    RETURNING id
), events AS (
    INSERT INTO alert_events (alert_id, at, type, dispatch_id, responder_id, actor, data)
    SELECT e.alert_id, e.at, e.type, e.dispatch_id, e.responder_id, e.actor, e.data
      FROM unnest($29::uuid[], $30::timestamptz[], $31::text[], $32::uuid[], $33::text[], $34::text[], $35::jsonb[])
           WITH ORDINALITY AS e(alert_id, at, type, dispatch_id, responder_id, actor, data, n)
     WHERE e.alert_id IN (SELECT id FROM created)
       AND (e.dispatch_id IS NULL OR e.dispatch_id IN (SELECT id FROM dispatched))
     ORDER BY e.n
), queued AS (
    INSERT INTO outbox (channel, recipient, template, payload, alert_id, dispatch_id, next_attempt_at, created_at,
                        status, sent_at, attempts, leased_until)
    SELECT m.channel, m.recipient, m.template,
           CASE WHEN m.alert_id IN (SELECT id FROM given WHERE channel = 'drill')
                THEN m.payload || '{"drill": true}'::jsonb ELSE m.payload END,
           m.alert_id, m.dispatch_id, $1::timestamptz, $1::timestamptz,
           o.status, o.sent_at, o.attempts, o.leased_until
      FROM unnest($36::text[], $37::text[], $38::text[], $39::jsonb[], $40::uuid[], $41::uuid[])
           WITH ORDINALITY AS m(channel, recipient, template, payload, alert_id, dispatch_id, n)
     CROSS JOIN LATERAL outbox_entry(m.channel, $1::timestamptz, $42::float8) AS o
     WHERE (m.alert_id IS NULL OR m.alert_id IN (SELECT id FROM created))
       AND (m.dispatch_id IS NULL OR m.dispatch_id IN (SELECT id FROM dispatched))
     ORDER BY m.n
    RETURNING id, channel, recipient, template, payload, alert_id, dispatch_id, attempts, created_at, provider_ref
)
SELECT 'alert' AS made, id AS made_id, NULL::bigint AS id, NULL::text AS channel, NULL::text AS recipient,
       NULL::text AS template, NULL::jsonb AS payload, NULL::uuid AS alert_id, NULL::uuid AS dispatch_id,
       NULL::int AS attempts, NULL::timestamptz AS created_at, NULL::text AS provider_ref
  FROM created
UNION ALL
SELECT 'dispatch', id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM dispatched
UNION ALL
SELECT 'message', NULL, q.id, q.channel, q.recipient, q.template, q.payload, q.alert_id, q.dispatch_id, q.attempts,
       q.created_at, q.provider_ref
  FROM queued q WHERE q.channel <> 'console' AND $42::float8 IS NOT NULL
UNION ALL
SELECT 'notified', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(pg_notify('alertd_events', json_build_object(
           'type', 'notification', 'recipient', c.recipient, 'template', c.template, 'alert_id', c.alert_id,
           'dispatch_id', c.dispatch_id, 'payload', c.payload)::text))::int, NULL, NULL
  FROM (SELECT * FROM queued WHERE channel = 'console' ORDER BY id) AS c
UNION ALL
SELECT 'woken', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(pg_notify('alertd_wake', 'outbox'))::int, NULL,
       NULL
  FROM (SELECT 1 FROM queued WHERE channel <> 'console' AND $42::float8 IS NULL LIMIT 1) AS others;

-- name: lock_people_check_devices
-- Lock the people $1 (in id order, so two groups cannot deadlock: one person's alerts are raised one group at a
-- time), and say which of the devices $2 are enrolled and not revoked, with their person (an app alert's device is
-- checked in the transaction that raises it). One round trip: a row per person locked (device_id NULL), with her
-- registered home as find_people_homes reads it (lat NULL: none; read with the lock it costs nothing, and an alert
-- with no fix, every button press, needs it), then a row per live device. The first branch always runs in full, so
-- every person is locked whatever $2 holds.
WITH locked AS (
    SELECT id, home, home_accuracy_m, created_at FROM people WHERE id = ANY($1::text[]) ORDER BY id
       FOR NO KEY UPDATE
)
SELECT NULL::text AS device_id, l.id AS person_id, ST_Y(l.home::geometry) AS lat, ST_X(l.home::geometry) AS lon,
       l.home_accuracy_m AS accuracy_m, 'home' AS source, l.created_at AS fix_time
  FROM locked l
UNION ALL
SELECT d.id, d.person_id, NULL, NULL, NULL, NULL, NULL
  FROM devices d WHERE d.id = ANY($2::text[]) AND d.revoked_at IS NULL;

-- name: find_alerts_by_keys_or_people
-- Under the people's locks, in one round trip: `sent` rows, the alert each device already sent each of these
-- (device_id $1, client_alert_id $2) pairs to (raised, or joined as a repeat); `open` rows, the open alert of each
-- of the people $3 (the newest, should there be several). Each key and each person is one index probe (LATERAL
-- ... LIMIT 1 cannot be flattened into a join): a plan cached while alerts was small must not become a scan of
-- every alert as the table grows (bench/sustained.py).
SELECT 'sent' AS found, u.device_id, u.client_alert_id, NULL::text AS person_id, s.id, s.status
  FROM unnest($1::text[], $2::text[]) AS u(device_id, client_alert_id)
 CROSS JOIN LATERAL (
       (SELECT a.id, a.status FROM alerts a
         WHERE a.device_id = u.device_id AND a.client_alert_id = u.client_alert_id LIMIT 1)
       UNION ALL
       (SELECT a.id, a.status FROM alert_repeats r JOIN alerts a ON a.id = r.alert_id
         WHERE r.device_id = u.device_id AND r.client_alert_id = u.client_alert_id LIMIT 1)
       LIMIT 1) AS s
UNION ALL
SELECT 'open', NULL, NULL, p.person_id, o.id, o.status
  FROM unnest($3::text[]) AS p(person_id)
 CROSS JOIN LATERAL (
       SELECT a.id, a.status FROM alerts a
        WHERE a.person_id = p.person_id AND a.status IN ('open', 'unanswered')
        ORDER BY a.created_at DESC LIMIT 1) AS o;

-- name: insert_repeats
-- Keep the idempotency key of each repeat ($2 devices, $3 client_alert_ids) with the alert it joined, at $1.
INSERT INTO alert_repeats (device_id, client_alert_id, alert_id, channel, received_at)
SELECT u.device_id, u.client_alert_id, u.alert_id, u.channel, $1
  FROM unnest($2::text[], $3::text[], $4::uuid[], $5::text[]) AS u(device_id, client_alert_id, alert_id, channel)
ON CONFLICT DO NOTHING;

-- name: lock_alerts
-- Lock alerts (in id order) that repeats are about to join, with their best location.
SELECT a.id, a.person_id, a.device_id, a.status, a.priority, a.duress, a.region, a.triage, a.repeats, a.drill,
       ST_Y(a.location::geometry) AS loc_lat, ST_X(a.location::geometry) AS loc_lon,
       a.location_accuracy_m AS loc_accuracy_m, a.location_source AS loc_source,
       a.location_fix_time AS loc_fix_time
  FROM alerts a WHERE a.id = ANY($1::uuid[]) ORDER BY a.id FOR UPDATE;

-- name: set_repeats
-- Record how many repeats each alert ($1) has now ($2) and its priority ($3).
UPDATE alerts a SET repeats = u.repeats, priority = u.priority
  FROM unnest($1::uuid[], $2::int[], $3::text[]) AS u(id, repeats, priority)
 WHERE a.id = u.id;

-- name: lock_alert
-- Lock one alert for a state change.
SELECT a.id, a.person_id, a.device_id, a.status, a.priority, a.duress, a.region, a.triage, a.drill,
       ST_Y(a.location::geometry) AS loc_lat, ST_X(a.location::geometry) AS loc_lon,
       a.location_accuracy_m AS loc_accuracy_m, a.location_source AS loc_source,
       a.location_fix_time AS loc_fix_time
  FROM alerts a WHERE a.id = $1 FOR UPDATE;

-- name: get_alert
-- One alert with its best location.
SELECT a.id, a.person_id, a.device_id, a.channel, a.status, a.priority, a.duress, a.stale_token,
       a.verified, a.triage, a.region, a.triggered_at, a.created_at, a.closed_at, a.drill,
       ST_Y(a.location::geometry) AS loc_lat, ST_X(a.location::geometry) AS loc_lon,
       a.location_accuracy_m AS loc_accuracy_m, a.location_source AS loc_source,
       a.location_fix_time AS loc_fix_time
  FROM alerts a WHERE a.id = $1;

-- name: get_visible_alert
-- Alert $1 with its best location and the nearest named place to it, if the caller may read it: an admin ($2 and
-- $3 null) any; otherwise one dispatched to responder $2, or (a supervisor) one of region $3 (its own region, else
-- its person's).
SELECT a.id, a.person_id, a.device_id, a.channel, a.status, a.priority, a.duress, a.stale_token,
       a.verified, a.triage, a.region, a.triggered_at, a.created_at, a.closed_at, a.drill,
       ST_Y(a.location::geometry) AS loc_lat, ST_X(a.location::geometry) AS loc_lon,
       a.location_accuracy_m AS loc_accuracy_m, a.location_source AS loc_source,
       a.location_fix_time AS loc_fix_time,
       pl.geonameid AS place_geonameid, pl.name AS place_name, pl.asciiname AS place_asciiname,
       pl.name_ru AS place_name_ru, pl.name_kk AS place_name_kk, pl.population AS place_population,
       pl.lat AS place_lat, pl.lon AS place_lon
  FROM alerts a LEFT JOIN people p ON p.id = a.person_id  -- a drill has no person
  LEFT JOIN LATERAL (
      SELECT pl.geonameid, pl.name, pl.asciiname, pl.name_ru, pl.name_kk, pl.population,
             ST_Y(pl.geog::geometry) AS lat, ST_X(pl.geog::geometry) AS lon
        FROM places pl WHERE a.location IS NOT NULL
       ORDER BY pl.geog <-> a.location LIMIT 1) pl ON true
 WHERE a.id = $1
   AND (($2::text IS NULL AND $3::text IS NULL)
        OR coalesce(a.region, p.region) = $3
        OR EXISTS (SELECT 1 FROM dispatches d WHERE d.alert_id = a.id AND d.responder_id = $2));

-- name: set_alert_location
-- Record the alert's best location and where it came from; $7 is its region if it has none yet.
UPDATE alerts SET location = ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography,
       location_accuracy_m = $4, location_source = $5, location_fix_time = $6, triage = false,
       region = coalesce(region, $7)
 WHERE id = $1;

-- name: set_alert_status
-- Move an alert to a new status; closed_at is stamped when it leaves open/unanswered.
UPDATE alerts SET status = $2,
       closed_at = CASE WHEN $2 IN ('cancelled', 'resolved') THEN $3 ELSE closed_at END
 WHERE id = $1;

-- name: set_alert_duress
-- Mark an alert as raised under duress: it stays live with its priority raised.
UPDATE alerts SET duress = true, priority = 'high' WHERE id = $1;

-- name: insert_fixes
-- Append location fixes to alerts' trails (one statement for a group), received at $1.
INSERT INTO location_fixes (alert_id, location, accuracy_m, source, fix_time, received_at)
SELECT u.alert_id, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)::geography, u.accuracy_m, u.source, u.fix_time, $1
  FROM unnest($2::uuid[], $3::float8[], $4::float8[], $5::real[], $6::text[], $7::timestamptz[])
       WITH ORDINALITY AS u(alert_id, lon, lat, accuracy_m, source, fix_time, n)
 ORDER BY u.n;

-- name: list_alert_fixes
-- An alert's location trail, oldest first.
SELECT ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon, accuracy_m, source, fix_time
  FROM location_fixes WHERE alert_id = $1 ORDER BY fix_time, id;

-- name: find_people_homes
-- The registered homes of these people (those who have one).
SELECT id AS person_id, ST_Y(home::geometry) AS lat, ST_X(home::geometry) AS lon, home_accuracy_m AS accuracy_m,
       'home' AS source, created_at AS fix_time
  FROM people WHERE id = ANY($1::text[]) AND home IS NOT NULL;

-- name: get_person_pins
-- A person's PIN hashes, for cancel.
SELECT cancel_pin_hash, duress_pin_hash FROM people WHERE id = $1;

-- name: list_alert_events
-- An alert's timeline, oldest first.
SELECT id, at, type, dispatch_id, responder_id, actor, data FROM alert_events WHERE alert_id = $1 ORDER BY id;

-- name: get_cancel_guard
-- Alert $1's wrong cancel PINs, and since when that guards it against cancelling (lock the alert first).
SELECT wrong_pins, cancel_guarded_at FROM alerts WHERE id = $1;

-- name: count_wrong_pin
-- One more wrong cancel PIN on alert $1; from $3 of them on it is guarded (since $2, the first time).
UPDATE alerts SET wrong_pins = wrong_pins + 1,
                  cancel_guarded_at = CASE WHEN wrong_pins + 1 >= $3 THEN coalesce(cancel_guarded_at, $2)
                                           ELSE cancel_guarded_at END
 WHERE id = $1
RETURNING wrong_pins, cancel_guarded_at;

-- name: raise_alert_priority
-- Raise alert $1's priority to high.
UPDATE alerts SET priority = 'high' WHERE id = $1;

-- name: check_device_sent_alert
-- Whether device $2 raised alert $1, or sent an alert that joined it as a repeat.
SELECT EXISTS (SELECT 1 FROM alerts WHERE id = $1 AND device_id = $2)
    OR EXISTS (SELECT 1 FROM alert_repeats WHERE alert_id = $1 AND device_id = $2);
