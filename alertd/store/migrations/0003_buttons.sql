-- Why: wearable buttons and mobile-unit terminals talk MQTT. Each has broker credentials kept here (one table an
-- MQTT broker can authenticate against: Mosquitto via the dynamic-security plugin that alertd feeds, EMQX by
-- querying it directly), a button has an HMAC secret and the last `seq` it sent (a replayed or old press is
-- refused, a redelivered one makes no second alert), and heartbeats keep battery and last-seen for supervision.
-- Unit terminals move their unit: responders get a last-seen time so a silent unit counts as off duty.
-- Cell towers (OpenCellID format) locate a press that has no GPS.

CREATE TABLE mqtt_accounts (
    username      text PRIMARY KEY,                   -- the device id of a button, the responder id of a unit
    kind          text NOT NULL CHECK (kind IN ('button', 'unit')),
    device_id     text UNIQUE REFERENCES devices(id) ON DELETE CASCADE,
    responder_id  text UNIQUE REFERENCES responders(id) ON DELETE CASCADE,
    password_hash text NOT NULL,                      -- hex sha256(salt || password); the password is random
    salt          text NOT NULL,
    created_at    timestamptz NOT NULL,
    rotated_at    timestamptz,
    revoked_at    timestamptz,
    CHECK ((kind = 'button') = (device_id IS NOT NULL) AND (kind = 'unit') = (responder_id IS NOT NULL))
);

CREATE TABLE buttons (
    device_id            text PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    hmac_secret          text NOT NULL,               -- hex; the service must hold it to check each mac
    caseworker_id        text REFERENCES responders(id), -- who hears supervision notices (else the engineers)
    last_seq             bigint NOT NULL DEFAULT 0,   -- highest seq accepted: anything at or below is refused
    last_seen_at         timestamptz,
    battery              real,                        -- 0..1, from the last heartbeat or press
    silent_notice_at     timestamptz,                 -- a "silent" notice went out for the current silence
    low_battery_notice_at timestamptz,                -- a "low battery" notice went out for the current low
    created_at           timestamptz NOT NULL
);
-- The supervision sweep looks for buttons not heard from since a moment.
CREATE INDEX buttons_silent ON buttons (last_seen_at) WHERE silent_notice_at IS NULL;
CREATE INDEX buttons_low_battery ON buttons (battery) WHERE low_battery_notice_at IS NULL;

-- Topic rights per account, in the shape EMQX's PostgreSQL authorizer reads (permission, action, topic).
CREATE VIEW mqtt_acl AS
SELECT a.username, 'allow'::text AS permission, r.action, r.topic
  FROM mqtt_accounts a
  CROSS JOIN LATERAL (VALUES
      ('publish', format('alertd/v1/buttons/%s/press', a.username)),
      ('publish', format('alertd/v1/buttons/%s/heartbeat', a.username)),
      ('subscribe', format('alertd/v1/buttons/%s/ack', a.username))) AS r(action, topic)
 WHERE a.kind = 'button' AND a.revoked_at IS NULL
UNION ALL
SELECT a.username, 'allow'::text, r.action, r.topic
  FROM mqtt_accounts a
  CROSS JOIN LATERAL (VALUES
      ('publish', format('alertd/v1/units/%s/location', a.username)),
      ('publish', format('alertd/v1/units/%s/ack', a.username)),
      ('subscribe', format('alertd/v1/units/%s/dispatch', a.username))) AS r(action, topic)
 WHERE a.kind = 'unit' AND a.revoked_at IS NULL;

ALTER TABLE responders ADD COLUMN last_seen_at timestamptz;  -- a unit terminal's last location report

CREATE TABLE cell_towers (
    mcc        int NOT NULL,
    mnc        int NOT NULL,
    lac        int NOT NULL,
    cid        bigint NOT NULL,
    radio      text,
    location   geography(Point, 4326) NOT NULL,
    range_m    real,
    updated_at timestamptz,
    PRIMARY KEY (mcc, mnc, lac, cid)
);

-- A press without GPS looks up her phone app's latest fix: find her app alerts without scanning them all.
CREATE INDEX alerts_person_app ON alerts (person_id, created_at DESC) WHERE channel = 'app';
