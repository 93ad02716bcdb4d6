-- Why: one device could flood the responder network (300 app alerts in 1.6 s made 900 dispatches). While a
-- person has an open alert, a new alert from any of her channels joins it as a repeat instead of dispatching
-- again: `alerts.repeats` counts them (her priority is raised after a few), and `alert_repeats` keeps each
-- repeat's idempotency key, so a retried app alert or a redelivered button press that joined her alert gets
-- the same answer again (alerts keep the key of the alert that was created; repeats keep theirs here).

ALTER TABLE alerts ADD COLUMN repeats int NOT NULL DEFAULT 0;

CREATE TABLE alert_repeats (
    device_id        text NOT NULL REFERENCES devices(id),
    client_alert_id  text NOT NULL,
    alert_id         uuid NOT NULL REFERENCES alerts(id),
    channel          text NOT NULL,
    received_at      timestamptz NOT NULL,
    PRIMARY KEY (device_id, client_alert_id)
);
CREATE INDEX alert_repeats_alert ON alert_repeats (alert_id);
