-- name: record_channel_test
-- Record that channel $4 of person $2 worked at $6 (device $3, the test's own id $5), once: the same test again returns its first proof (fresh false).
WITH new AS (
    INSERT INTO channel_tests (id, person_id, device_id, channel, client_test_id, at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (person_id, channel, coalesce(device_id, ''), client_test_id) DO NOTHING
    RETURNING id, at, true AS fresh
)
SELECT id, at, fresh FROM new
UNION ALL
SELECT id, at, false FROM channel_tests
 WHERE person_id = $2 AND channel = $4 AND coalesce(device_id, '') = coalesce($3, '') AND client_test_id = $5
   AND NOT EXISTS (SELECT 1 FROM new);

-- name: record_button_tests
-- Record test presses of buttons ($2 person, $3 device, $4 seq; ids $1) at $5 (each seq is above its button's last, so new).
INSERT INTO channel_tests (id, person_id, device_id, channel, client_test_id, at)
SELECT u.id, u.person_id, u.device_id, 'button', 'seq:' || u.seq, $5
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS u(id, person_id, device_id, seq)
ON CONFLICT DO NOTHING;

-- name: find_button_tests
-- Which of these (device, seq) test presses were recorded (a redelivered test is acknowledged again).
SELECT t.device_id, t.client_test_id
  FROM channel_tests t JOIN unnest($1::text[], $2::text[]) AS u(device_id, client_test_id)
    ON t.device_id = u.device_id AND t.client_test_id = u.client_test_id
 WHERE t.channel = 'button';

-- name: get_person_caseworker
-- Who hears that person $1's channels work: the caseworker of her newest live button with one, and her region.
SELECT p.id, p.region, p.opt_in_sms,
       (SELECT b.caseworker_id FROM buttons b JOIN devices d ON d.id = b.device_id
         WHERE d.person_id = p.id AND d.revoked_at IS NULL AND b.caseworker_id IS NOT NULL
         ORDER BY b.created_at DESC LIMIT 1) AS caseworker_id
  FROM people p WHERE p.id = $1;

-- name: get_person_sms_contact
-- Her own number, for a message she opted in to (nothing unless she did).
SELECT ph.phone FROM people p JOIN person_phones ph ON ph.person_id = p.id
 WHERE p.id = $1 AND p.opt_in_sms ORDER BY ph.phone LIMIT 1;

-- name: list_channel_proofs
-- When each channel of the people in $1 last worked: each live button and phone app, and SMS for one with a number.
SELECT d.person_id, CASE d.kind WHEN 'button' THEN 'button' ELSE 'app' END AS channel, d.id AS device_id,
       (SELECT max(t.at) FROM channel_tests t WHERE t.device_id = d.id) AS last_proven_at
  FROM devices d WHERE d.person_id = ANY($1::text[]) AND d.revoked_at IS NULL
UNION ALL
SELECT p.id, 'sms', NULL,
       (SELECT max(t.at) FROM channel_tests t WHERE t.person_id = p.id AND t.channel = 'sms')
  FROM people p WHERE p.id = ANY($1::text[]) AND EXISTS (SELECT 1 FROM person_phones ph WHERE ph.person_id = p.id)
 ORDER BY 1, 2, 3;

-- name: list_caseworker_people
-- The people whose live buttons name responder $1 as their caseworker (at most $2).
SELECT DISTINCT d.person_id FROM buttons b JOIN devices d ON d.id = b.device_id
 WHERE b.caseworker_id = $1 AND d.revoked_at IS NULL
 ORDER BY d.person_id LIMIT $2;
