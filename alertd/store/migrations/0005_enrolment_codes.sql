-- Why: the phone app enrols itself with a short-lived, one-time code that an advocate reads out, instead of
-- a long device token copied onto a phone someone else may check. Only an HMAC of the code is kept (keyed
-- with the service's secret), so a copy of the database cannot be used to redeem a live code.
CREATE TABLE enrolment_codes (
    code_hash  text PRIMARY KEY,                       -- hex HMAC-SHA256 of the normalised code
    person_id  text NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    device_id  text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz                             -- set once, by the redeeming request
);
CREATE INDEX enrolment_codes_device ON enrolment_codes (device_id);
