-- Dispatches: the nearest responders, dispatching, acknowledging, standing down.

-- name: find_nearest_responders
-- For each point n of ($2 lons, $3 lats) and each kind in $1: the nearest on-duty responder not in $4, with its contacts; for police a post whose jurisdiction covers the point wins; a unit whose terminal was last heard before $5 is off duty. With $6, each row also names the point's nearest place (place_*; NULL: the gazetteer is empty).
-- One query for all three kinds and for a whole group of alerts: a group's dispatch costs one round trip, and with
-- $6 its messages' named places come with it (the intake's; one KNN probe of places per point, once per point:
-- the points are materialized before the kinds multiply them).
-- Each point reaches the LATERAL subqueries as a parameter, so `<->` walks the GiST index once per point and
-- kind (bench/nearest.py prints the plan: an index scan, never a scan and sort of every responder).
WITH points AS MATERIALIZED (
    SELECT u.n, g.g, pl.*
      FROM unnest($2::float8[], $3::float8[]) WITH ORDINALITY AS u(lon, lat, n)
     CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)::geography AS g) AS g
      LEFT JOIN LATERAL (
           SELECT x.geonameid AS place_geonameid, x.name AS place_name, x.asciiname AS place_asciiname,
                  x.name_ru AS place_name_ru, x.name_kk AS place_name_kk, x.population AS place_population,
                  ST_Y(x.geog::geometry) AS place_lat, ST_X(x.geog::geometry) AS place_lon
             FROM places x
            WHERE $6::boolean
            ORDER BY x.geog <-> g.g
            LIMIT 1) AS pl ON true
)
SELECT p.n, p.place_geonameid, p.place_name, p.place_asciiname, p.place_name_ru, p.place_name_kk,
       p.place_population, p.place_lat, p.place_lon, n.*,
       EXISTS (SELECT 1 FROM mqtt_accounts m WHERE m.responder_id = n.id AND m.revoked_at IS NULL) AS has_terminal
  FROM points p
 CROSS JOIN unnest($1::text[]) AS k(kind)
 CROSS JOIN LATERAL (
    (SELECT r.id, r.kind, r.name, r.region, ST_Y(r.location::geometry) AS lat, ST_X(r.location::geometry) AS lon,
            ST_Distance(r.location, p.g) AS distance_m, r.phone, r.language
       FROM responders r
      WHERE k.kind = 'police_post' AND r.kind = k.kind AND r.on_duty AND r.jurisdiction IS NOT NULL
        AND ST_Covers(r.jurisdiction, p.g) AND r.id <> ALL($4::text[])
      ORDER BY r.location <-> p.g
      LIMIT 1)
    UNION ALL
    (SELECT r.id, r.kind, r.name, r.region, ST_Y(r.location::geometry) AS lat, ST_X(r.location::geometry) AS lon,
            ST_Distance(r.location, p.g) AS distance_m, r.phone, r.language
       FROM responders r
      WHERE r.kind = k.kind AND r.on_duty AND r.id <> ALL($4::text[])
        AND (r.last_seen_at IS NULL OR $5::timestamptz IS NULL OR r.last_seen_at >= $5)
      ORDER BY r.location <-> p.g
      LIMIT 1)
    LIMIT 1) AS n;

-- name: find_region_responders
-- The $7 on-duty responders of kind $1 in region $2 not in $3 nearest to ($4 lon, $5 lat), within $6 metres, nearest first, with contacts.
WITH here AS (SELECT ST_SetSRID(ST_MakePoint($4, $5), 4326)::geography AS g)
SELECT r.id, r.kind, r.name, r.region, ST_Y(r.location::geometry) AS lat, ST_X(r.location::geometry) AS lon,
       ST_Distance(r.location, here.g) AS distance_m, r.phone, r.language,
       EXISTS (SELECT 1 FROM mqtt_accounts m WHERE m.responder_id = r.id AND m.revoked_at IS NULL) AS has_terminal
  FROM responders r, here
 WHERE r.kind = $1 AND r.region = $2 AND r.on_duty AND r.id <> ALL($3::text[])
   AND ST_DWithin(r.location, here.g, $6)
 ORDER BY r.location <-> here.g
 LIMIT $7;

-- name: get_responder_contacts
-- How to reach a responder (has_terminal: a mobile unit with live MQTT terminal credentials).
SELECT id, kind, name, region, phone, language,
       EXISTS (SELECT 1 FROM mqtt_accounts m WHERE m.responder_id = responders.id AND m.revoked_at IS NULL)
           AS has_terminal
  FROM responders WHERE id = $1;

-- name: insert_dispatches
-- Dispatch alerts to responders (one statement for a group; attempt $1, broadcast $2, at $3); a row whose code is taken is skipped, and its id not returned.
INSERT INTO dispatches (id, alert_id, kind, responder_id, code, attempt, broadcast, distance_m,
                        ack_deadline, created_at, updated_at)
SELECT u.id, u.alert_id, u.kind, u.responder_id, u.code, $1, $2, u.distance_m, u.deadline, $3, $3
  FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::real[], $10::timestamptz[])
       WITH ORDINALITY AS u(id, alert_id, kind, responder_id, code, distance_m, deadline, n)
 ORDER BY u.n
ON CONFLICT (code) DO NOTHING
RETURNING id;

-- name: list_alert_dispatches
-- Every dispatch of an alert, with the alert's best location and the delivery state of its SMS (if one was sent).
SELECT d.id, d.alert_id, d.kind, d.responder_id, d.status, d.code, d.ack_deadline, d.acknowledged_at,
       d.attempt, d.late_ack, d.broadcast, d.distance_m, d.created_at, d.expired_at, d.note,
       (SELECT coalesce(m.delivery, m.state, o.status) FROM outbox o
          LEFT JOIN sms_messages m ON m.outbox_id = o.id
         WHERE o.dispatch_id = d.id AND o.channel = 'sms' AND o.template = 'dispatch'
         ORDER BY o.id DESC LIMIT 1) AS sms_delivery,
       ST_Y(a.location::geometry) AS loc_lat, ST_X(a.location::geometry) AS loc_lon,
       a.location_accuracy_m AS loc_accuracy_m, a.location_source AS loc_source,
       a.location_fix_time AS loc_fix_time
  FROM dispatches d JOIN alerts a ON a.id = d.alert_id
 WHERE d.alert_id = $1 ORDER BY d.created_at, d.kind, d.attempt;

-- name: list_responder_dispatches
-- A responder's dispatches, newest first, optionally of one status, with the delivery state of each one's SMS,
-- the alert's channel and pseudonymous person (so an officer sees two alerts of one person as hers), repeats, and
-- the nearest named place to the best location of a live alert (one KNN probe, ~0.5 ms, per live alert only: the
-- list holds up to 200 mostly closed dispatches; the place always matches the location shown).
SELECT d.id, d.alert_id, d.kind, d.responder_id, d.status, d.code, d.ack_deadline, d.acknowledged_at,
       d.attempt, d.late_ack, d.broadcast, d.distance_m, d.created_at, d.expired_at, d.note,
       a.priority, a.duress, a.status AS alert_status, a.channel, a.person_id,
       a.repeats, a.drill,
       (SELECT coalesce(m.delivery, m.state, o.status) FROM outbox o
          LEFT JOIN sms_messages m ON m.outbox_id = o.id
         WHERE o.dispatch_id = d.id AND o.channel = 'sms' AND o.template = 'dispatch'
         ORDER BY o.id DESC LIMIT 1) AS sms_delivery,
       ST_Y(a.location::geometry) AS loc_lat, ST_X(a.location::geometry) AS loc_lon,
       a.location_accuracy_m AS loc_accuracy_m, a.location_source AS loc_source,
       a.location_fix_time AS loc_fix_time,
       pl.geonameid AS place_geonameid, pl.name AS place_name, pl.asciiname AS place_asciiname,
       pl.name_ru AS place_name_ru, pl.name_kk AS place_name_kk, pl.population AS place_population,
       pl.lat AS place_lat, pl.lon AS place_lon
  FROM dispatches d JOIN alerts a ON a.id = d.alert_id
  LEFT JOIN LATERAL (
      SELECT pl.geonameid, pl.name, pl.asciiname, pl.name_ru, pl.name_kk, pl.population,
             ST_Y(pl.geog::geometry) AS lat, ST_X(pl.geog::geometry) AS lon
        FROM places pl WHERE a.location IS NOT NULL AND a.status IN ('open', 'unanswered')
       ORDER BY pl.geog <-> a.location LIMIT 1) pl ON true
 WHERE d.responder_id = $1 AND ($2::text IS NULL OR d.status = $2)
 ORDER BY d.created_at DESC
 LIMIT $3;

-- name: lock_dispatch
-- Lock one dispatch (of one responder, when $2 is given) for a state change.
SELECT d.id, d.alert_id, d.kind, d.responder_id, d.status, d.code, d.ack_deadline, d.acknowledged_at,
       d.attempt, d.late_ack, a.status AS alert_status
  FROM dispatches d JOIN alerts a ON a.id = d.alert_id
 WHERE d.id = $1 AND ($2::text IS NULL OR d.responder_id = $2)
   FOR UPDATE OF d;

-- name: ack_dispatch
-- Acknowledge a dispatch; late when it had already expired.
UPDATE dispatches SET status = 'acknowledged', acknowledged_at = $2, late_ack = $3, updated_at = $2
 WHERE id = $1;

-- name: set_dispatch_status
-- Move a dispatch to en_route, on_scene, resolved or cancelled, with an optional note.
UPDATE dispatches SET status = $2, note = coalesce($3, note), updated_at = $4 WHERE id = $1;

-- name: get_dispatch_alert_id
-- The alert a dispatch belongs to (to lock the alert first: alert, then dispatch, everywhere).
SELECT alert_id FROM dispatches WHERE id = $1;

-- name: cancel_broadcast_siblings
-- Once one responder of a kind acknowledged, the other pending region-wide dispatches of that kind stand down.
UPDATE dispatches SET status = 'cancelled', note = 'acknowledged by another responder', updated_at = $3
 WHERE alert_id = $1 AND kind = $2 AND status = 'pending' AND broadcast
RETURNING id, responder_id, code;
