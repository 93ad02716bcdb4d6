-- People, responders and enrolment codes.

-- name: get_person
-- Is there a person with this id (and which region is hers)?
SELECT id, region FROM people WHERE id = $1;

-- name: insert_person
-- Enrol a person under a pseudonymous id.
INSERT INTO people (id, cancel_pin_hash, duress_pin_hash, home, home_accuracy_m, code_phrase, opt_in_sms, region)
VALUES ($1, $2, $3,
        CASE WHEN $4::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint($5, $4), 4326)::geography END,
        $6, $7, $8, $9);

-- name: insert_person_phone
-- Register a phone number of a person.
INSERT INTO person_phones (phone, person_id) VALUES ($1, $2);

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

-- name: update_responder_statistics
-- ANALYZE after an import: without statistics the nearest query scans and sorts every responder of a kind, not the GiST index.
ANALYZE responders;

-- name: check_responder
-- Is there a responder with this id?
SELECT kind, region FROM responders WHERE id = $1;

-- name: insert_enrolment_code
-- Store a new one-time enrolment code (its HMAC) for a person's phone device.
INSERT INTO enrolment_codes (code_hash, person_id, device_id, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5);

-- name: drop_unused_enrolment_codes
-- Forget a device's codes that were never redeemed (a newer code replaces them).
DELETE FROM enrolment_codes WHERE device_id = $1 AND used_at IS NULL;

-- name: redeem_enrolment_code
-- Mark a live, unused code of an enrolled device as used, in one statement (two racing redeems: one wins).
UPDATE enrolment_codes c SET used_at = $2
 WHERE c.code_hash = $1 AND c.used_at IS NULL AND c.expires_at > $2
   AND EXISTS (SELECT 1 FROM devices d WHERE d.id = c.device_id AND d.revoked_at IS NULL)
RETURNING c.person_id, c.device_id;

-- name: get_phone_device_of_person
-- The newest unrevoked phone app device of a person.
SELECT id FROM devices WHERE person_id = $1 AND kind = 'phone' AND revoked_at IS NULL
 ORDER BY created_at DESC LIMIT 1;
