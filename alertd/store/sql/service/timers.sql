-- Check-in timers: started by her phone app or by SMS, checked in with her PIN (the engine fires them: engine.sql).

-- name: insert_timer
-- Start timer $1 of person $2 (device $3, key $4, channel $5) at $6, due at $7; nothing if that device sent that key before.
INSERT INTO timers (id, person_id, device_id, client_timer_id, channel, started_at, due_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (coalesce(device_id, ''), client_timer_id) DO NOTHING
RETURNING id, person_id, device_id, status, due_at;

-- name: get_timer_by_client
-- The timer device $1 (NULL: SMS) started with key $2.
SELECT id, person_id, device_id, status, due_at FROM timers
 WHERE coalesce(device_id, '') = coalesce($1, '') AND client_timer_id = $2;

-- name: lock_timer
-- Lock one timer for a change (extend, check-in).
SELECT id, person_id, device_id, channel, status, due_at, duress, alert_id, wrong_pins, guarded_at
  FROM timers WHERE id = $1 FOR UPDATE;

-- name: get_timer
-- One timer as its owner sees it.
SELECT id, person_id, status, due_at FROM timers WHERE id = $1;

-- name: set_timer_due
-- Move running timer $1's due time to $2.
UPDATE timers SET due_at = $2 WHERE id = $1 AND status = 'running' RETURNING id, status, due_at;

-- name: set_timer_checked_in
-- Timer $1 checked in at $2 (duress $3: then $4 is the duress alert).
UPDATE timers SET status = 'checked_in', checked_in_at = coalesce(checked_in_at, $2), duress = duress OR $3,
                  alert_id = coalesce($4, alert_id)
 WHERE id = $1
RETURNING id, status, due_at;

-- name: count_timer_wrong_pin
-- One more wrong PIN on timer $1; from $3 of them on it is guarded (since $2, the first time).
UPDATE timers SET wrong_pins = wrong_pins + 1,
                  guarded_at = CASE WHEN wrong_pins + 1 >= $3 THEN coalesce(guarded_at, $2) ELSE guarded_at END
 WHERE id = $1
RETURNING wrong_pins, guarded_at;

-- name: insert_timer_fix
-- Where she was while timer $1 ran: lon $2, lat $3, accuracy $4, source $5, taken at $6, received at $7.
INSERT INTO timer_fixes (timer_id, location, accuracy_m, source, fix_time, received_at)
VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography, $4, $5, $6, $7);

-- name: list_timer_fixes
-- Timer $1's fixes, oldest first.
SELECT ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon, accuracy_m, source, fix_time
  FROM timer_fixes WHERE timer_id = $1 ORDER BY fix_time, id;

-- name: get_phone_last_fix
-- Person $1's phone's newest fix taken at $2 or later (from her alerts' trails or her timers'), if any.
SELECT lat, lon, accuracy_m, source, fix_time FROM (
    SELECT ST_Y(f.location::geometry) AS lat, ST_X(f.location::geometry) AS lon, f.accuracy_m, f.source, f.fix_time
      FROM location_fixes f JOIN alerts a ON a.id = f.alert_id JOIN devices d ON d.id = a.device_id
     WHERE a.person_id = $1 AND d.kind = 'phone' AND f.fix_time >= $2
    UNION ALL
    SELECT ST_Y(f.location::geometry), ST_X(f.location::geometry), f.accuracy_m, f.source, f.fix_time
      FROM timer_fixes f JOIN timers t ON t.id = f.timer_id
     WHERE t.person_id = $1 AND f.fix_time >= $2
) AS fixes ORDER BY fix_time DESC LIMIT 1;

-- name: set_timer_duress
-- A duress PIN on timer $1 after its due time: duress alert $2 noted, the timer left to the engine.
UPDATE timers SET duress = true, alert_id = coalesce(alert_id, $2) WHERE id = $1;
