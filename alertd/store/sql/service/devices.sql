-- Devices: tokens, broker accounts, buttons, unit terminals, cell towers.

-- name: get_device_for_token
-- The device a token names, with its person (revoked devices are returned so callers can refuse them).
SELECT d.id, d.person_id, d.kind, d.revoked_at FROM devices d WHERE d.id = $1;

-- name: insert_device
-- Register a device of a person.
INSERT INTO devices (id, person_id, kind, created_at) VALUES ($1, $2, $3, $4);

-- name: revoke_device
-- Revoke a device: its token and credentials stop working at once.
UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id;

-- name: insert_mqtt_account
-- Give a button or a unit terminal broker credentials; a unit provisioned again gets new ones.
INSERT INTO mqtt_accounts (username, kind, device_id, responder_id, password_hash, salt, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, salt = EXCLUDED.salt,
    rotated_at = EXCLUDED.created_at, revoked_at = NULL
RETURNING username;

-- name: set_mqtt_password
-- Rotate an account's broker password (a revoked account stays revoked).
UPDATE mqtt_accounts SET password_hash = $2, salt = $3, rotated_at = $4
 WHERE username = $1 AND revoked_at IS NULL RETURNING username;

-- name: revoke_mqtt_account
-- Cut an account off: the broker refuses it from now on.
UPDATE mqtt_accounts SET revoked_at = $2 WHERE username = $1 AND revoked_at IS NULL RETURNING username, kind;

-- name: get_mqtt_account
-- One broker account (for EMQX's authenticator the same row: password_hash and salt by username).
SELECT username, kind, device_id, responder_id, password_hash, salt, revoked_at FROM mqtt_accounts
 WHERE username = $1;

-- name: insert_button
-- Register a button's HMAC secret and who hears its supervision notices.
INSERT INTO buttons (device_id, hmac_secret, caseworker_id, created_at) VALUES ($1, $2, $3, $4);

-- name: set_button_secret
-- Rotate a button's HMAC secret.
UPDATE buttons SET hmac_secret = $2 WHERE device_id = $1 RETURNING device_id;

-- name: lock_buttons
-- Lock buttons (in id order) to check and advance their seq; revoked devices are returned so callers can refuse them.
SELECT b.device_id, b.hmac_secret, b.last_seq, b.caseworker_id, d.person_id, d.revoked_at, p.region
  FROM buttons b JOIN devices d ON d.id = b.device_id JOIN people p ON p.id = d.person_id
 WHERE b.device_id = ANY($1::text[])
 ORDER BY b.device_id
   FOR UPDATE OF b;

-- name: record_buttons_heard
-- Accept messages at $1: advance each button's seq, stamp last-seen and battery, end a silence, forget a low battery that recovered (at or above $2).
UPDATE buttons b SET last_seq = u.seq, last_seen_at = $1, battery = coalesce(u.battery, b.battery),
       silent_notice_at = NULL,
       low_battery_notice_at = CASE WHEN coalesce(u.battery, b.battery) >= $2 THEN NULL
                                    ELSE b.low_battery_notice_at END
  FROM unnest($3::text[], $4::bigint[], $5::real[]) AS u(device_id, seq, battery)
 WHERE b.device_id = u.device_id;

-- name: find_phones_last_fixes
-- For each person in $1: the newest fix her phone app sent at or after $2 (her phone's last known position).
SELECT DISTINCT ON (a.person_id) a.person_id, ST_Y(f.location::geometry) AS lat, ST_X(f.location::geometry) AS lon,
       f.accuracy_m, 'phone_last_fix' AS source, f.fix_time
  FROM alerts a JOIN location_fixes f ON f.alert_id = a.id
 WHERE a.person_id = ANY($1::text[]) AND a.channel = 'app' AND f.fix_time >= $2
 ORDER BY a.person_id, f.fix_time DESC;

-- name: find_cell_towers
-- Where each of these cell towers (mcc, mnc, lac, cid) stands and how far it reaches (those known).
SELECT t.mcc, t.mnc, t.lac, t.cid, ST_Y(t.location::geometry) AS lat, ST_X(t.location::geometry) AS lon, t.range_m
  FROM unnest($1::int[], $2::int[], $3::int[], $4::bigint[]) AS u(mcc, mnc, lac, cid)
  JOIN cell_towers t ON (t.mcc, t.mnc, t.lac, t.cid) = (u.mcc, u.mnc, u.lac, u.cid);

-- name: create_cell_import
-- A session table to COPY an OpenCellID file into before merging it.
CREATE TEMP TABLE cell_import (radio text, mcc int, mnc int, lac int, cid bigint, lon float8, lat float8,
                               range_m real, updated_at timestamptz) ON COMMIT DROP;

-- name: merge_cell_import
-- Merge the imported towers into cell_towers (a re-import updates by mcc/mnc/lac/cid).
INSERT INTO cell_towers (mcc, mnc, lac, cid, radio, location, range_m, updated_at)
SELECT DISTINCT ON (mcc, mnc, lac, cid) mcc, mnc, lac, cid, radio,
       ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography, range_m, updated_at
  FROM cell_import ORDER BY mcc, mnc, lac, cid, updated_at DESC NULLS LAST
ON CONFLICT (mcc, mnc, lac, cid) DO UPDATE SET radio = EXCLUDED.radio, location = EXCLUDED.location,
    range_m = EXCLUDED.range_m, updated_at = EXCLUDED.updated_at;

-- name: get_mobile_unit
-- A mobile unit by id (nothing for other kinds).
SELECT id, region, on_duty, last_seen_at FROM responders WHERE id = $1 AND kind = 'mobile_unit';

-- name: move_unit
-- A unit terminal reported where it is now.
UPDATE responders SET location = ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography, last_seen_at = $4,
       updated_at = $4
 WHERE id = $1 AND kind = 'mobile_unit';
