-- The notifiers' own.

-- name: notify_console
-- Push messages to every instance's console feed, in order.
SELECT pg_notify('alertd_events', body) FROM unnest($1::text[]) WITH ORDINALITY AS u(body, n) ORDER BY n;
