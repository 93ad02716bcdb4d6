-- The store's own: is the database there, warm a connection up, how it vacuums.

-- name: warm_postgis
-- Touch PostGIS once so a pooled connection has loaded it before the first alert.
SELECT ST_Distance(ST_MakePoint(0, 0)::geography, ST_MakePoint(1, 1)::geography);

-- name: ping
-- Is the database answering?
SELECT 1;

-- name: get_vacuum_settings
-- The server's autovacuum switch and naptime (seconds): the queues need frequent vacuuming.
SELECT (SELECT setting FROM pg_settings WHERE name = 'autovacuum') AS autovacuum,
       (SELECT setting FROM pg_settings WHERE name = 'autovacuum_naptime') AS naptime_s;
