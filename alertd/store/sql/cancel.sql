-- Cancelling an alert with her PIN: the guard against guessing it.

-- name: alert_cancel_guard
-- Alert $1's wrong cancel PINs, and since when that guards it against cancelling (lock the alert first).
SELECT wrong_pins, cancel_guarded_at FROM alerts WHERE id = $1;

-- name: alert_count_wrong_pin
-- One more wrong cancel PIN on alert $1; from $3 of them on it is guarded (since $2, the first time).
UPDATE alerts SET wrong_pins = wrong_pins + 1,
                  cancel_guarded_at = CASE WHEN wrong_pins + 1 >= $3 THEN coalesce(cancel_guarded_at, $2)
                                           ELSE cancel_guarded_at END
 WHERE id = $1
RETURNING wrong_pins, cancel_guarded_at;

-- name: raise_alert_priority
-- Raise alert $1's priority to high.
UPDATE alerts SET priority = 'high' WHERE id = $1;

-- name: device_sent_alert
-- Whether device $2 raised alert $1, or sent an alert that joined it as a repeat.
SELECT EXISTS (SELECT 1 FROM alerts WHERE id = $1 AND device_id = $2)
    OR EXISTS (SELECT 1 FROM alert_repeats WHERE alert_id = $1 AND device_id = $2);
