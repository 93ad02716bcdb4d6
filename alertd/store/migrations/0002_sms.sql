-- Why: the SMS channel. Twilio retries webhooks, so each inbound MessageSid is recorded once; an SMS alert
-- carries its MessageSid and a person has at most one open SMS alert, so a retried or concurrent SMS adds to
-- her alert instead of making a second one. Unknown numbers get a pseudonymous person (not enrolled) so their
-- later messages join the same alert; messages with nothing to act on wait in a triage queue for the duty desk.
-- Outbound SMS keep one row per outbox message: the idempotency record that lets a timeout be reconciled
-- instead of resent, and the delivery status Twilio's callback reports.

CREATE TABLE sms_inbound (
    message_sid  text PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    outcome      text NOT NULL,                 -- raised, added, ignored, triage, ack, responder
    alert_id     uuid REFERENCES alerts(id),
    dispatch_id  uuid REFERENCES dispatches(id)
);

CREATE TABLE sms_contacts (
    phone       text PRIMARY KEY,               -- E.164 of a sender who is not enrolled
    person_id   text NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL
);

CREATE TABLE sms_triage (
    id           bigserial PRIMARY KEY,
    message_sid  text NOT NULL UNIQUE,
    phone        text NOT NULL,                 -- the duty desk may need to call back
    body         text NOT NULL,
    received_at  timestamptz NOT NULL,
    resolved_at  timestamptz
);
CREATE INDEX sms_triage_open ON sms_triage (received_at) WHERE resolved_at IS NULL;

CREATE TABLE sms_messages (
    outbox_id     bigint PRIMARY KEY REFERENCES outbox(id),
    provider      text NOT NULL,                -- twilio, gateway
    state         text NOT NULL CHECK (state IN ('sending', 'accepted', 'ambiguous', 'rejected')),
    sid           text UNIQUE,                  -- the provider's message id once known
    body          text NOT NULL,                -- what was sent: a code and a ~100 m place, never who she is
    attempted_at  timestamptz NOT NULL,
    delivery      text,                         -- queued, sent, delivered, undelivered, failed
    error_code    text,
    updated_at    timestamptz NOT NULL
);

-- One alert per MessageSid, committed with the alert itself.
CREATE UNIQUE INDEX alerts_sms_message ON alerts (client_alert_id) WHERE channel = 'sms' AND device_id IS NULL;
-- At most one open SMS alert per person: a concurrent second SMS joins the first.
CREATE UNIQUE INDEX alerts_one_open_sms ON alerts (person_id) WHERE channel = 'sms' AND status IN ('open', 'unanswered');
-- Inbound acknowledgements look responders up by their registered phone.
CREATE INDEX responders_phone ON responders (phone) WHERE phone IS NOT NULL;
