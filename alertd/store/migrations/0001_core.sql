-- Why: the core of alertd. People raise alerts from devices; an alert is located from its fixes (or the
-- person's home) and dispatched in one transaction to the nearest on-duty responder of each kind, each
-- dispatch with an acknowledgement deadline the engine enforces. Everything that happens to an alert is an
-- append-only event; everything to be sent goes through the outbox; refused input is a security event.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE people (
    id              text PRIMARY KEY,                 -- pseudonymous, e.g. P-7K3QXM; never a name
    cancel_pin_hash text,                             -- argon2id
    duress_pin_hash text,                             -- argon2id
    home            geography(Point, 4326),
    home_accuracy_m real,
    code_phrase     text,                             -- normalised (casefolded, accents stripped)
    opt_in_sms      boolean NOT NULL DEFAULT false,   -- may alertd ever text her own phone?
    region          text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE person_phones (
    phone     text PRIMARY KEY,                       -- E.164
    person_id text NOT NULL REFERENCES people(id) ON DELETE CASCADE
);

CREATE TABLE devices (
    id          text PRIMARY KEY,
    person_id   text NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('phone', 'button')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX devices_person ON devices (person_id);

CREATE TABLE responders (
    id            text PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('police_post', 'crisis_centre', 'mobile_unit')),
    name          text NOT NULL,
    region        text NOT NULL,
    location      geography(Point, 4326) NOT NULL,
    jurisdiction  geography(MultiPolygon, 4326),
    on_duty       boolean NOT NULL DEFAULT true,
    phone         text,
    language      text NOT NULL DEFAULT 'ru' CHECK (language IN ('kk', 'ru', 'en')),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- KNN (<->) on geography needs a GiST index; nearest queries filter by kind and duty first.
CREATE INDEX responders_location ON responders USING gist (location);
CREATE INDEX responders_jurisdiction ON responders USING gist (jurisdiction) WHERE jurisdiction IS NOT NULL;
CREATE INDEX responders_kind_region ON responders (kind, region) WHERE on_duty;

CREATE TABLE alerts (
    id               uuid PRIMARY KEY,
    person_id        text NOT NULL REFERENCES people(id),
    device_id        text REFERENCES devices(id),
    channel          text NOT NULL CHECK (channel IN ('app', 'sms', 'button')),
    client_alert_id  text,
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'cancelled', 'resolved', 'unanswered')),
    priority         text NOT NULL DEFAULT 'normal' CHECK (priority IN ('normal', 'high')),
    duress           boolean NOT NULL DEFAULT false,
    stale_token      boolean NOT NULL DEFAULT false,
    verified         boolean NOT NULL DEFAULT true,
    triage           boolean NOT NULL DEFAULT false,  -- no usable location: the duty desk must act
    region           text,
    location         geography(Point, 4326),
    location_accuracy_m real,
    location_source  text,
    location_fix_time timestamptz,
    triggered_at     timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    closed_at        timestamptz,
    UNIQUE (device_id, client_alert_id)
);
CREATE INDEX alerts_open ON alerts (person_id) WHERE status IN ('open', 'unanswered');

CREATE TABLE location_fixes (
    id          bigserial PRIMARY KEY,
    alert_id    uuid NOT NULL REFERENCES alerts(id),
    location    geography(Point, 4326) NOT NULL,
    accuracy_m  real,
    source      text NOT NULL,
    fix_time    timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX location_fixes_alert ON location_fixes (alert_id, fix_time);

CREATE TABLE dispatches (
    id               uuid PRIMARY KEY,
    alert_id         uuid NOT NULL REFERENCES alerts(id),
    kind             text NOT NULL,
    responder_id     text NOT NULL REFERENCES responders(id),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'acknowledged', 'expired', 'en_route', 'on_scene',
                                       'resolved', 'cancelled')),
    code             text NOT NULL UNIQUE,
    attempt          int NOT NULL DEFAULT 1,          -- 1 = first choice, 2 = first escalation, ...
    broadcast        boolean NOT NULL DEFAULT false,  -- sent to every on-duty responder of the region
    distance_m       real,
    ack_deadline     timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    late_ack         boolean NOT NULL DEFAULT false,
    expired_at       timestamptz,
    note             text,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX dispatches_alert ON dispatches (alert_id);
CREATE INDEX dispatches_responder ON dispatches (responder_id, created_at DESC);
-- The deadline engine's claim: only pending rows, in deadline order.
CREATE INDEX dispatches_due ON dispatches (ack_deadline) WHERE status = 'pending';

CREATE TABLE alert_events (
    id           bigserial PRIMARY KEY,
    alert_id     uuid NOT NULL REFERENCES alerts(id),
    at           timestamptz NOT NULL,
    type         text NOT NULL,
    dispatch_id  uuid,
    responder_id text,
    actor        text,
    data         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

-- The timeline is append-only: history of a safety incident must not be rewritten.
CREATE FUNCTION alert_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alert_events is append-only';
END $$;
CREATE TRIGGER alert_events_no_change BEFORE UPDATE OR DELETE ON alert_events
    FOR EACH ROW EXECUTE FUNCTION alert_events_append_only();

-- Every instance's console feed hears every timeline event, whichever instance wrote it.
CREATE FUNCTION alert_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alertd_events', json_build_object(
        'id', NEW.id, 'alert_id', NEW.alert_id, 'type', NEW.type,
        'dispatch_id', NEW.dispatch_id, 'responder_id', NEW.responder_id)::text);
    RETURN NEW;
END $$;
CREATE TRIGGER alert_events_notify AFTER INSERT ON alert_events
    FOR EACH ROW EXECUTE FUNCTION alert_events_notify();

CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    channel         text NOT NULL,                    -- notifier registry key: log, console, sms, mqtt
    recipient       text NOT NULL,                    -- responder id, 'supervisor:<region>', ...
    template        text NOT NULL,                    -- dispatch, escalation, cancelled, duress, ...
    payload         jsonb NOT NULL,
    alert_id        uuid REFERENCES alerts(id),
    dispatch_id     uuid REFERENCES dispatches(id),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    provider_ref    text,
    last_error      text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE security_events (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL,
    kind    text NOT NULL,                            -- bad_token, revoked_device, bad_signature, ...
    source  text NOT NULL,                            -- channel and peer, never a survivor's number
    detail  jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    alert_id  uuid,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_alert ON audit_log (alert_id);
