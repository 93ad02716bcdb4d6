-- The console's live feed.

-- name: list_events_since
-- Timeline events after $1 on alerts dispatched to responder $2 (or any alert when $2 is null): a console catching up.
SELECT e.id, e.alert_id, e.type, e.dispatch_id, e.responder_id, e.at
  FROM alert_events e
 WHERE e.id > $1
   AND ($2::text IS NULL OR e.alert_id IN (SELECT alert_id FROM dispatches WHERE responder_id = $2))
 ORDER BY e.id
 LIMIT 1000;

-- name: list_events_in_range
-- Timeline events with ids $1..$2 and who may see each (its alert's region and dispatched responders).
SELECT e.id, e.alert_id, e.type, e.dispatch_id, e.responder_id, a.region,
       (SELECT coalesce(array_agg(DISTINCT d.responder_id), '{}') FROM dispatches d WHERE d.alert_id = e.alert_id)
           AS responders
  FROM alert_events e JOIN alerts a ON a.id = e.alert_id
 WHERE e.id BETWEEN $1 AND $2
 ORDER BY e.id;
