-- The gazetteer: named places responders are told an alert is near (migration 0015).

-- name: find_nearest_places
-- The nearest place to each of the points ($1 lons, $2 lats), one KNN probe of the GiST index per point; n is the
-- point's position (1-based); a point with no place at all has no row.
SELECT pt.n, p.geonameid, p.name, p.asciiname, p.name_ru, p.name_kk, p.population,
       ST_Y(p.geog::geometry) AS lat, ST_X(p.geog::geometry) AS lon
  FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS pt(lon, lat, n)
  CROSS JOIN LATERAL (
      SELECT * FROM places
       ORDER BY geog <-> ST_SetSRID(ST_MakePoint(pt.lon, pt.lat), 4326)::geography
       LIMIT 1) p;

-- name: merge_places
-- Merge the staged places into the gazetteer by geonameid ($1 now); how many were new and how many updated. A
-- geonameid twice in one file keeps its last line.
WITH staged AS (
    SELECT DISTINCT ON (geonameid) * FROM places_import ORDER BY geonameid, ctid DESC
), merged AS (
    INSERT INTO places (geonameid, name, asciiname, name_ru, name_kk, feature_class, feature_code, country, admin1,
                        population, geog, modified, imported_at)
    SELECT geonameid, name, asciiname, name_ru, name_kk, feature_class, feature_code, country, admin1, population,
           ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography, modified, $1
      FROM staged
    ON CONFLICT (geonameid) DO UPDATE
       SET name = excluded.name, asciiname = excluded.asciiname, name_ru = excluded.name_ru,
           name_kk = excluded.name_kk, feature_class = excluded.feature_class,
           feature_code = excluded.feature_code, country = excluded.country, admin1 = excluded.admin1,
           population = excluded.population, geog = excluded.geog, modified = excluded.modified,
           imported_at = excluded.imported_at
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM places_import) AS staged
  FROM merged;

-- name: create_places_stage
-- A staging table for one import, gone at commit: the dump is COPYed here, then merged into places.
CREATE TEMP TABLE places_import (
    geonameid bigint, name text, asciiname text, name_ru text, name_kk text, feature_class text,
    feature_code text, country text, admin1 text, population bigint, lat double precision,
    lon double precision, modified date
) ON COMMIT DROP;

-- name: list_places_within
-- Places inside a box ($1 west, $2 south, $3 east, $4 north), the most populous first, at most $5 (map labels).
SELECT geonameid, name, asciiname, name_ru, name_kk, population, feature_code,
       ST_Y(geog::geometry) AS lat, ST_X(geog::geometry) AS lon
  FROM places
 WHERE geog && ST_MakeEnvelope($1, $2, $3, $4, 4326)::geography
 ORDER BY population DESC, geonameid
 LIMIT $5;
