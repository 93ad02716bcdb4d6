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

-- name: phone_device_of_person
-- The newest unrevoked phone app device of a person.
SELECT id FROM devices WHERE person_id = $1 AND kind = 'phone' AND revoked_at IS NULL
 ORDER BY created_at DESC LIMIT 1;
