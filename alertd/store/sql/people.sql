-- name: insert_person
-- Enrol a person under a pseudonymous id.
INSERT INTO people (id, cancel_pin_hash, duress_pin_hash, home, home_accuracy_m, code_phrase, opt_in_sms, region)
VALUES ($1, $2, $3,
        CASE WHEN $4::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint($5, $4), 4326)::geography END,
        $6, $7, $8, $9);

-- name: insert_person_phone
-- Register a phone number of a person.
INSERT INTO person_phones (phone, person_id) VALUES ($1, $2);

-- name: insert_device
-- Register a device of a person.
INSERT INTO devices (id, person_id, kind, created_at) VALUES ($1, $2, $3, $4);

-- name: revoke_device
-- Revoke a device: its token and credentials stop working at once.
UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id;

-- name: upsert_responder
-- Create or update a responder by id (re-import updates).
INSERT INTO responders (id, kind, name, region, location, jurisdiction, on_duty, phone, language, updated_at)
VALUES ($1, $2, $3, $4, ST_SetSRID(ST_MakePoint($6, $5), 4326)::geography,
        CASE WHEN $7::text IS NULL THEN NULL
             ELSE ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($7), 4326))::geography END,
        $8, $9, $10, now())
ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, region = EXCLUDED.region,
    location = EXCLUDED.location, jurisdiction = EXCLUDED.jurisdiction, on_duty = EXCLUDED.on_duty,
    phone = EXCLUDED.phone, language = EXCLUDED.language, updated_at = now()
RETURNING (xmax = 0) AS inserted;

-- name: set_on_duty
-- Put a responder on or off duty.
UPDATE responders SET on_duty = $2, updated_at = now() WHERE id = $1 RETURNING id;

-- name: responder_exists
-- Is there a responder with this id?
SELECT kind, region FROM responders WHERE id = $1;

-- name: first_phone_person
-- The earliest enrolled person with a phone app device (the demo's sample person).
SELECT p.id AS person_id, d.id AS device_id FROM people p
  JOIN devices d ON d.person_id = p.id AND d.kind = 'phone' AND d.revoked_at IS NULL
 ORDER BY p.created_at LIMIT 1;

-- name: database_exists
-- Does a database of this name exist (run against the maintenance database)?
SELECT 1 FROM pg_database WHERE datname = $1;
