-- Why: check-in timers. She starts a timer before something dangerous; if she has not checked in (with her PIN)
-- when it runs out, the engine raises her alert (channel 'timer') exactly as if she had pressed. The row is the
-- truth: the engine claims due running timers with SKIP LOCKED and marks each expired with its alert's id in the
-- same transaction, so a timer fires once whichever instance claims it, and one that fell due while no engine ran
-- fires at the next start. A duress check-in answers like a real one (status checked_in) and keeps the duress
-- alert's id in alert_id. Wrong PINs are counted on the timer; from ALERTD_CANCEL_MAX_WRONG_PINS on it is guarded.
CREATE TABLE timers (
    id               uuid PRIMARY KEY,
    person_id        text NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    device_id        text REFERENCES devices(id),             -- NULL for a timer started by SMS
    client_timer_id  text NOT NULL,                            -- the phone app's key; an SMS timer: its MessageSid
    channel          text NOT NULL CHECK (channel IN ('app', 'sms')),
    status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'checked_in', 'expired')),
    started_at       timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    checked_in_at    timestamptz,
    expired_at       timestamptz,
    alert_id         uuid REFERENCES alerts(id),
    duress           boolean NOT NULL DEFAULT false,
    wrong_pins       int NOT NULL DEFAULT 0,
    guarded_at       timestamptz
);
-- The app's retries find the timer they started (an SMS timer's key is its MessageSid, unique on its own).
CREATE UNIQUE INDEX timers_client ON timers (coalesce(device_id, ''), client_timer_id);
-- The engine's claim: only running timers, in due order.
CREATE INDEX timers_due ON timers (due_at) WHERE status = 'running';
CREATE INDEX timers_person_running ON timers (person_id, started_at DESC) WHERE status = 'running';

-- Where she said she was while the timer ran (the app sends a fix with a start or an extension).
CREATE TABLE timer_fixes (
    id          bigserial PRIMARY KEY,
    timer_id    uuid NOT NULL REFERENCES timers(id) ON DELETE CASCADE,
    location    geography(Point, 4326) NOT NULL,
    accuracy_m  real,
    source      text NOT NULL,
    fix_time    timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX timer_fixes_timer ON timer_fixes (timer_id, fix_time);

-- Alerts raised by a timer carry channel 'timer'. The list is written out whole: every channel allowed so far
-- (0001 app, sms, button; 0016 traccar) and this one.
ALTER TABLE alerts DROP CONSTRAINT alerts_channel_check,
    ADD CONSTRAINT alerts_channel_check CHECK (channel IN ('app', 'sms', 'button', 'traccar', 'timer'));

-- The engine module that fires them starts at version 1, as 0014 recorded the modules it found.
INSERT INTO engine_versions (module, version, recorded_at) VALUES ('timers', 1, now()) ON CONFLICT (module) DO NOTHING;
