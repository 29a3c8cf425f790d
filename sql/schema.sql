-- The health archive. Every table a later stage reads; all timestamps are UTC (TIMESTAMP without zone) with the
-- original offset kept in minutes where it matters. `batch_id` + `line` point back to the source row.
-- Idempotent: run at every connect.

create sequence if not exists ingest_batch_seq start 1;

create table if not exists ingest_batch (
    batch_id        bigint primary key,
    source_file     varchar not null,      -- path as given (relative where possible)
    content_sha256  varchar not null,      -- a rerun of the same content is skipped
    format          varchar,               -- device_csv | fhir_ndjson | mhealth_json
    status          varchar not null,      -- loaded | empty
    rows_read       bigint not null,
    rows_loaded     bigint not null,
    rows_quarantined bigint not null,
    rows_skipped    bigint not null,       -- e.g. FHIR resource types chronic does not read
    skipped_types   json,                  -- {"Encounter": 12, ...}
    started_at      timestamp not null,
    finished_at     timestamp not null
);

create table if not exists person (
    person_id   varchar primary key,
    clinic_id   varchar,
    sex         varchar,                   -- 'M' | 'F'
    birth_date  date,
    province    varchar,
    north       boolean,                   -- north of the Qinling-Huaihe line
    urban       boolean,
    batch_id    bigint
);

create table if not exists observation (
    person_id     varchar not null,
    measure       varchar not null,        -- canonical name from measures.toml (sbp, fpg, ...)
    code          varchar not null,        -- code as received (LOINC or chronic:...)
    value         double not null,         -- canonical unit
    unit          varchar not null,        -- canonical unit (UCUM)
    effective_at  timestamp not null,      -- UTC
    tz_offset_min smallint,                -- offset of the source timestamp
    source        varchar not null,        -- device_csv | fhir_ndjson | mhealth_json
    device_id     varchar,
    batch_id      bigint not null,
    line          bigint not null
);

create table if not exists condition (
    person_id     varchar not null,
    icd10         varchar not null,        -- without dot, upper case: E119
    onset_date    date,
    recorded_date date,
    batch_id      bigint not null,
    line          bigint not null
);

create table if not exists medication (
    person_id   varchar not null,
    atc         varchar not null,
    start_date  date,
    end_date    date,
    status      varchar,
    batch_id    bigint not null,
    line        bigint not null
);

create table if not exists family_history (
    person_id     varchar not null,
    relationship  varchar not null,        -- v3 RoleCode (FTH, MTH, SIB, ...)
    degree        smallint,                -- 1 first-degree, 2 second-degree, null unknown
    icd10         varchar not null,
    batch_id      bigint not null,
    line          bigint not null
);

create table if not exists lifestyle (
    person_id     varchar not null,
    item          varchar not null,        -- smoking | exercise_days_week | exercise_min_day | veg_fruit_daily | high_salt_diet
    value_text    varchar,                 -- smoking: never | former | current; booleans: true | false
    value_num     double,
    effective_at  timestamp,
    batch_id      bigint not null,
    line          bigint not null
);

create table if not exists quarantine (
    batch_id     bigint not null,
    source_file  varchar not null,
    line         bigint not null,
    field        varchar,
    reason       varchar not null,
    detail       varchar,                  -- never holds identifiers
    raw          varchar                   -- the raw line, kept in the archive only
);

-- Natural keys of the non-reading records loaded (person, condition, medication, family history, lifestyle), so
-- that the same record arriving again in another file is caught as a duplicate whatever its type.
create table if not exists record_seen (
    kind        varchar not null,
    record_key  varchar not null,
    batch_id    bigint not null
);

-- Labels per person x task x as-of date x mode (chronic.clinical.labels): 1 / 0 / null and why.
create table if not exists label (
    person_id     varchar not null,
    clinic_id     varchar,
    task          varchar not null,        -- t2d | hypertension | dyslipidemia | hyperuricemia | ckd | chd
    as_of         date not null,
    mode          varchar not null,        -- incident | screen
    horizon_years double,                  -- incident mode only
    value         tinyint,                 -- 1 positive, 0 negative, null missing
    event_date    date,                    -- onset (incident) or date found positive (screen)
    reason        varchar not null         -- which code, drug or measurement; or why the label is missing
);
