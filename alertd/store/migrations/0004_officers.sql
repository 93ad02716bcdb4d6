-- Why: duty officers sign in to the browser console with a username and password (argon2id), not with a
-- token pasted from the command line. Each account acts for one responder, as an officer or as the supervisor
-- of that responder's region. Sign-in attempts are kept so every instance applies the same rate limit, and a
-- console session lives in the database so signing out ends it on every instance.
CREATE TABLE officers (
    username        text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,62}$'),
    password_hash   text NOT NULL,                    -- argon2id
    responder_id    text NOT NULL REFERENCES responders(id),
    role            text NOT NULL DEFAULT 'officer' CHECK (role IN ('officer', 'supervisor')),
    language        text NOT NULL DEFAULT 'ru' CHECK (language IN ('kk', 'ru', 'en')),
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_sign_in_at timestamptz
);
CREATE INDEX officers_responder ON officers (responder_id);

CREATE TABLE officer_sessions (
    id          uuid PRIMARY KEY,
    username    text NOT NULL REFERENCES officers(username) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,                 -- the longest a console stays signed in
    ended_at    timestamptz                           -- signed out, or the account was changed
);
CREATE INDEX officer_sessions_username ON officer_sessions (username) WHERE ended_at IS NULL;

-- Sign-in attempts not (yet) successful: each is recorded before its password is checked, so parallel guesses
-- cannot slip past the limiter, which counts them per username and per source over a sliding window.
CREATE TABLE sign_in_failures (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    username  text NOT NULL,
    source    text NOT NULL
);
CREATE INDEX sign_in_failures_username ON sign_in_failures (username, at);
CREATE INDEX sign_in_failures_source ON sign_in_failures (source, at);
