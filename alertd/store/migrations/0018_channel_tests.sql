-- Why: she must be able to trust her button and her phone app without calling the police. A test press (MQTT
-- `buttons/{id}/test`) or the app's self-test (`POST /v1/tests`) proves a channel end to end and dispatches
-- nothing; a confirmation SMS she opted in to, once delivered, proves SMS reaches her phone. Each proof is a
-- row here, so her caseworker's console can show when each of her channels last worked. A proof holds no
-- location and no words: only which channel, which device, when.

CREATE TABLE channel_tests (
    id             uuid PRIMARY KEY,
    person_id      text NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    device_id      text REFERENCES devices(id) ON DELETE CASCADE,   -- null for SMS
    channel        text NOT NULL CHECK (channel IN ('button', 'app', 'sms')),
    client_test_id text NOT NULL,   -- the app's own id, `seq:N` of a button, `outbox:N` of a confirmation SMS
    at             timestamptz NOT NULL,
    CHECK ((channel = 'sms') = (device_id IS NULL))
);
-- The same test again (the app retrying, the broker redelivering) is the same proof, never a second one.
CREATE UNIQUE INDEX channel_tests_once ON channel_tests (person_id, channel, coalesce(device_id, ''), client_test_id);
-- "When did each of her channels last work?"
CREATE INDEX channel_tests_device ON channel_tests (device_id, at DESC) WHERE device_id IS NOT NULL;

-- A button may publish its tests on a topic of its own (the view EMQX's PostgreSQL authorizer reads).
CREATE OR REPLACE VIEW mqtt_acl AS
SELECT a.username, 'allow'::text AS permission, r.action, r.topic
  FROM mqtt_accounts a
  CROSS JOIN LATERAL (VALUES
      ('publish', format('alertd/v1/buttons/%s/press', a.username)),
      ('publish', format('alertd/v1/buttons/%s/heartbeat', a.username)),
      ('publish', format('alertd/v1/buttons/%s/test', a.username)),
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
