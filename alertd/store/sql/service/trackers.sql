-- Traccar gateways, the trackers they speak for, and the events they forwarded.

-- name: get_gateway_by_name
-- A gateway by name.
SELECT id, name, kind, created_at, revoked_at FROM gateways WHERE name = $1;

-- name: get_gateway_by_token
-- The gateway whose token hashes to $1 (revoked ones too: the caller tells them apart).
SELECT id, name, kind, token_sha256, revoked_at FROM gateways WHERE token_sha256 = $1;

-- name: insert_gateway
-- A new gateway ($1 name, $2 token SHA-256, $3 now); none if the name is taken.
INSERT INTO gateways (name, token_sha256, created_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, kind, created_at, revoked_at;

-- name: revoke_gateway
-- Revoke a gateway by name ($1, $2 now): its token stops working at once.
UPDATE gateways SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL
RETURNING id, name, kind, created_at, revoked_at;

-- name: list_gateways
-- Every gateway, oldest first, with how many trackers it alone speaks for.
SELECT g.id, g.name, g.kind, g.created_at, g.revoked_at,
       (SELECT count(*) FROM trackers t WHERE t.gateway_id = g.id AND t.removed_at IS NULL) AS trackers
  FROM gateways g ORDER BY g.id;

-- name: get_traccar_event_alert
-- The alert a Traccar event ($1 gateway, $2 event id) raised or joined, with its status.
SELECT e.alert_id, a.status FROM traccar_events e JOIN alerts a ON a.id = e.alert_id
 WHERE e.gateway_id = $1 AND e.event_id = $2;

-- name: claim_traccar_event
-- Claim a Traccar event ($1 gateway, $2 event id, $3 unique id, $4 now): a row when it is new; none when it was
-- acted on before (a second copy waits here for the first one's commit).
INSERT INTO traccar_events (gateway_id, event_id, unique_id, received_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (gateway_id, event_id) DO NOTHING
RETURNING event_id;

-- name: set_traccar_event_alert
-- Record the alert a claimed Traccar event raised or joined ($1 gateway, $2 event id, $3 alert).
UPDATE traccar_events SET alert_id = $3 WHERE gateway_id = $1 AND event_id = $2;

-- name: get_tracker_for_event
-- The tracker with this unique id ($1) as gateway $2 may speak for it, and its person's open alert if any.
SELECT t.person_id, t.removed_at, (t.gateway_id IS NOT NULL AND t.gateway_id <> $2) AS other_gateway,
       (SELECT a.id FROM alerts a WHERE a.person_id = t.person_id AND a.status IN ('open', 'unanswered')
         ORDER BY a.created_at DESC LIMIT 1) AS open_alert_id
  FROM trackers t WHERE t.unique_id = $1;

-- name: remove_tracker
-- Stop mapping a tracker to its person ($1 unique id, $2 now).
UPDATE trackers SET removed_at = $2 WHERE unique_id = $1 AND removed_at IS NULL RETURNING unique_id, person_id;

-- name: upsert_tracker
-- Add a tracker ($1 unique id, $2 person, $3 gateway or NULL, $4 now), or give a known one to this person again.
INSERT INTO trackers (unique_id, person_id, gateway_id, added_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (unique_id) DO UPDATE SET person_id = EXCLUDED.person_id, gateway_id = EXCLUDED.gateway_id,
                                      added_at = EXCLUDED.added_at, removed_at = NULL
RETURNING unique_id, person_id, added_at, (xmax = 0) AS inserted;

-- name: list_trackers
-- Trackers in use (with $1 true, removed ones too), with the gateway each is bound to.
SELECT t.unique_id, t.person_id, g.name AS gateway, t.added_at, t.removed_at
  FROM trackers t LEFT JOIN gateways g ON g.id = t.gateway_id
 WHERE $1::boolean OR t.removed_at IS NULL
 ORDER BY t.added_at, t.unique_id;
