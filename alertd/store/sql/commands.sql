-- The command line's own.

-- name: set_on_duty
-- Put a responder on or off duty.
UPDATE responders SET on_duty = $2, updated_at = now() WHERE id = $1 RETURNING id;

-- name: get_first_phone_person
-- The earliest enrolled person with a phone app device (the demo's sample person).
SELECT p.id AS person_id, d.id AS device_id FROM people p
  JOIN devices d ON d.person_id = p.id AND d.kind = 'phone' AND d.revoked_at IS NULL
 ORDER BY p.created_at LIMIT 1;

-- name: check_database_exists
-- Does a database of this name exist (run against the maintenance database)?
SELECT 1 FROM pg_database WHERE datname = $1;

-- name: count_places
-- How many places the gazetteer holds.
SELECT count(*) FROM places;

-- name: list_live_button_accounts
-- Every button with live broker credentials (their roles gain the test topic after an upgrade).
SELECT username FROM mqtt_accounts WHERE kind = 'button' AND revoked_at IS NULL ORDER BY username;
