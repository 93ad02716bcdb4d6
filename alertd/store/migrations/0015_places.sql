-- Why: a rural responder needs "14 km NE of Zhanaarka", not only coordinates. A gazetteer of named places
-- (GeoNames dumps loaded by `alertd places import FILE`, or the demo's invented villages) lets every dispatch name
-- the nearest place, its distance and its direction. Nearest-neighbour search is `ORDER BY geog <-> point LIMIT 1`
-- on the GiST index below. geonameid is GeoNames' own id, so importing a newer dump updates places in place.
CREATE TABLE places (
    geonameid     bigint PRIMARY KEY,
    name          text NOT NULL,                    -- GeoNames' name (UTF-8, often a transliteration)
    asciiname     text NOT NULL,                    -- the same in plain ASCII (what GSM-7 SMS can carry)
    name_ru       text,                             -- a Cyrillic alternate name without Kazakh letters, if any
    name_kk       text,                             -- a Cyrillic alternate name with Kazakh letters, if any
    feature_class char(1) NOT NULL,                 -- P populated place, S spot, H water, ...
    feature_code  text NOT NULL,                    -- PPL, PPLA, PPLC, RSTN, ...
    country       text NOT NULL DEFAULT '',         -- ISO 3166 alpha-2
    admin1        text NOT NULL DEFAULT '',         -- GeoNames' first-level administrative code
    population    bigint NOT NULL DEFAULT 0,
    geog          geography(Point, 4326) NOT NULL,
    modified      date,
    imported_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX places_geog ON places USING gist (geog);
