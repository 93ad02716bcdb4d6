-- Why: a cancel PIN had no attempt limit (120 wrong PINs, then the right one cancelled her alert). Repeated wrong
-- PINs on her alert mean someone else may be holding her phone: after ALERTD_CANCEL_MAX_WRONG_PINS the alert is
-- guarded, and no PIN cancels it any more. The count and the moment it was guarded live with the alert, so every
-- instance sees them.
ALTER TABLE alerts ADD COLUMN wrong_pins int NOT NULL DEFAULT 0,
                   ADD COLUMN cancel_guarded_at timestamptz;
