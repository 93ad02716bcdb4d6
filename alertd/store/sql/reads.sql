-- Reading an alert: who may, and the same work for every refusal.

-- name: alert_get_visible
-- Alert $1 with its best location and the nearest named place to it, if the caller may read it: an admin ($2 and
-- $3 null) any; otherwise one dispatched to responder $2, or (a supervisor) one of region $3 (its own region, else
-- its person's).
SELECT a.id, a.person_id, a.device_id, a.channel, a.status, a.priority, a.duress, a.stale_token,
       a.verified, a.triage, a.region, a.triggered_at, a.created_at, a.closed_at,
       ST_Y(a.location::geometry) AS loc_lat, ST_X(a.location::geometry) AS loc_lon,
       a.location_accuracy_m AS loc_accuracy_m, a.location_source AS loc_source,
       a.location_fix_time AS loc_fix_time,
       pl.geonameid AS place_geonameid, pl.name AS place_name, pl.asciiname AS place_asciiname,
       pl.name_ru AS place_name_ru, pl.name_kk AS place_name_kk, pl.population AS place_population,
       pl.lat AS place_lat, pl.lon AS place_lon
  FROM alerts a JOIN people p ON p.id = a.person_id
  LEFT JOIN LATERAL (
      SELECT pl.geonameid, pl.name, pl.asciiname, pl.name_ru, pl.name_kk, pl.population,
             ST_Y(pl.geog::geometry) AS lat, ST_X(pl.geog::geometry) AS lon
        FROM places pl WHERE a.location IS NOT NULL
       ORDER BY pl.geog <-> a.location LIMIT 1) pl ON true
 WHERE a.id = $1
   AND (($2::text IS NULL AND $3::text IS NULL)
        OR coalesce(a.region, p.region) = $3
        OR EXISTS (SELECT 1 FROM dispatches d WHERE d.alert_id = a.id AND d.responder_id = $2));
