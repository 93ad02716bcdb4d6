-- The demo's own.

-- name: list_mobile_units
-- Every mobile unit, by id (`alertd demo` gives each a terminal).
SELECT id FROM responders WHERE kind = 'mobile_unit' ORDER BY id;
