-- The SMS channel: inbound messages, triage, sending and delivery reports.

-- name: get_sms_contact_person
-- The pseudonymous person of a sender who is not enrolled, if she wrote before.
SELECT person_id FROM sms_contacts WHERE phone = $1;

-- name: lock_sms_contact
-- Serialise creating the pseudonymous person of one number (held to the end of the transaction).
SELECT pg_advisory_xact_lock(hashtext('alertd.sms_contact:' || $1));

-- name: insert_sms_stranger
-- A pseudonymous person for a sender who is not enrolled: no PIN, no home, no phone in person_phones.
INSERT INTO people (id) VALUES ($1);

-- name: insert_sms_contact
-- Remember which pseudonymous person a number that is not enrolled maps to.
INSERT INTO sms_contacts (phone, person_id, created_at) VALUES ($1, $2, $3);

-- name: get_open_alert_of_person
-- A person's open alert (any channel), newest first: a further SMS adds to it.
SELECT id, status FROM alerts
 WHERE person_id = $1 AND status IN ('open', 'unanswered')
 ORDER BY created_at DESC LIMIT 1;

-- name: record_inbound_sms
-- Record an inbound MessageSid once; nothing is returned when it was already recorded.
INSERT INTO sms_inbound (message_sid, received_at, outcome, alert_id, dispatch_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (message_sid) DO NOTHING
RETURNING message_sid;

-- name: insert_sms_triage
-- Queue a message from a number that is not enrolled, with nothing to dispatch on, for the duty desk.
INSERT INTO sms_triage (message_sid, phone, body, received_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (message_sid) DO NOTHING
RETURNING id;

-- name: list_open_sms_triage
-- The duty desk's queue: unresolved messages, oldest first.
SELECT id, phone, body, received_at FROM sms_triage
 WHERE resolved_at IS NULL ORDER BY received_at, id LIMIT $1;

-- name: resolve_sms_triage
-- The duty desk dealt with a triage message.
UPDATE sms_triage SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL RETURNING id;

-- name: get_dispatch_by_code
-- The dispatch a code names.
SELECT id, responder_id, status FROM dispatches WHERE code = $1;

-- name: get_sms_send
-- The send record of one outbox message, if an attempt was made before.
SELECT provider, state, sid, body, attempted_at FROM sms_messages WHERE outbox_id = $1;

-- name: begin_sms_send
-- Record that an attempt to send an outbox message starts now (before the provider is called).
INSERT INTO sms_messages (outbox_id, provider, state, body, attempted_at, updated_at)
VALUES ($1, $2, 'sending', $3, $4, $4)
ON CONFLICT (outbox_id) DO UPDATE SET provider = EXCLUDED.provider, state = 'sending', body = EXCLUDED.body,
    attempted_at = EXCLUDED.attempted_at, updated_at = EXCLUDED.updated_at;

-- name: record_sms_send_outcome
-- Record how an attempt ended: accepted (with the provider's id), ambiguous or rejected.
UPDATE sms_messages SET state = $2, sid = coalesce($3, sid), delivery = coalesce($4, delivery),
       error_code = $5, updated_at = $6
 WHERE outbox_id = $1;

-- name: lock_sms_by_sid
-- Lock a sent message by the provider's id, with what it was about, for a delivery status update.
SELECT m.outbox_id, m.delivery, o.template, o.recipient, o.alert_id, o.dispatch_id, o.payload->>'code' AS code
  FROM sms_messages m JOIN outbox o ON o.id = m.outbox_id
 WHERE m.sid = $1
   FOR UPDATE OF m;

-- name: set_sms_delivery
-- Record the delivery status the provider reported.
UPDATE sms_messages SET delivery = $2, error_code = $3, updated_at = $4 WHERE outbox_id = $1;

-- name: set_deadline_now
-- The responder cannot have read the dispatch (unless its unit terminal got it over MQTT): escalate it now.
UPDATE dispatches SET ack_deadline = LEAST(ack_deadline, $2), updated_at = $2
 WHERE id = $1 AND status = 'pending'
   AND NOT EXISTS (SELECT 1 FROM outbox o
                    WHERE o.dispatch_id = $1 AND o.template = 'dispatch' AND o.channel = 'mqtt' AND o.status = 'sent')
RETURNING id;

-- name: get_sms_sender
-- Everything an inbound SMS needs about its MessageSid and sender, in one round trip.
WITH person AS (
    SELECT pp.person_id, p.code_phrase FROM person_phones pp JOIN people p ON p.id = pp.person_id
     WHERE pp.phone = $2
), contact AS (
    SELECT person_id FROM sms_contacts WHERE phone = $2
)
SELECT EXISTS (SELECT 1 FROM sms_inbound WHERE message_sid = $1) AS seen,
       (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM responders WHERE phone = $2) AS responder_ids,
       (SELECT language FROM responders WHERE phone = $2 ORDER BY id LIMIT 1) AS responder_language,
       (SELECT person_id FROM person) AS person_id,
       (SELECT code_phrase FROM person) AS code_phrase,
       (SELECT person_id FROM contact) AS contact_person_id,
       (SELECT a.id FROM alerts a
         WHERE a.person_id = coalesce((SELECT person_id FROM person), (SELECT person_id FROM contact))
           AND a.status IN ('open', 'unanswered')
         ORDER BY a.created_at DESC LIMIT 1) AS open_alert_id;

-- name: record_inbound_sms_with_note
-- Record an inbound MessageSid once and, only if it is new, put her message on the alert's timeline.
WITH recorded AS (
    INSERT INTO sms_inbound (message_sid, received_at, outcome, alert_id) VALUES ($1, $2, $3, $4)
    ON CONFLICT (message_sid) DO NOTHING
    RETURNING alert_id
)
INSERT INTO alert_events (alert_id, at, type, data)
SELECT alert_id, $2, 'sms_received', $5 FROM recorded
RETURNING id;

-- name: get_responder_language
-- The language a responder reads.
SELECT language FROM responders WHERE id = $1;

-- name: find_sms_timer
-- The timer an SMS check-in of person $1 is for: her running timer started last, else one checked in or expired since $2.
SELECT id FROM timers
 WHERE person_id = $1 AND (status = 'running' OR coalesce(checked_in_at, expired_at) >= $2)
 ORDER BY status = 'running' DESC, started_at DESC, id LIMIT 1;
