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

-- Risk: one row per person x task x as-of date, written by `chronic score` from the registered model.
create table if not exists risk (
    person_id     varchar not null,
    clinic_id     varchar,
    task          varchar not null,
    as_of         date not null,
    probability   double not null,         -- model probability of the task's outcome (incident: within horizon)
    band          varchar not null,        -- low | moderate | high | very_high (cut-offs: chronic.care.bands)
    percentile    double,                  -- 0-100, rank of the probability among the clinic's people, same task
    rule_1        varchar,                 -- the three rules contributing most to this person's risk
    rule_2        varchar,
    rule_3        varchar,
    completeness  double,                  -- share of the core measures with a reading in the look-back (0-1)
    model_name    varchar not null,
    model_version varchar not null,
    scored_at     timestamp not null
);

-- Plans: one per person and as-of date; items carry their reason and a measurable target.
create table if not exists plan (
    plan_id       varchar not null,        -- stable: hash of person_id and start date
    person_id     varchar not null,
    clinic_id     varchar,
    start_date    date not null,
    band          varchar not null,        -- the person's highest band over tasks
    next_followup date not null,
    summary       varchar not null,
    status        varchar not null         -- active | superseded
);

create table if not exists plan_item (
    plan_id        varchar not null,
    item_id        varchar not null,       -- stable within the plan
    item_type      varchar not null,       -- e.g. diet_salt, exercise, smoking_cessation, weight_loss, monitor_bp, referral
    task           varchar,                -- the risk it addresses (null for general items)
    reason         varchar not null,       -- which risk, which factor, which value
    target_measure varchar,                -- the indicator the target is on (sbp, weight, fpg, ...)
    target_op      varchar,                -- <, <=, >=, ... or 'change_pct'
    target_value   double,
    baseline_value double,
    review_days    integer not null,       -- when to judge progress and escalate if none
    guideline      varchar not null,
    level          integer not null default 1   -- 1 = as planned; +1 per escalation
);

-- Pseudonym map of the clinic exports (chronic.export, docs/exports.md): the only way back from an exported person
-- key to the person; it never leaves the archive. One row per clinic and key: keys are per clinic, and a new export
-- key adds rows while the old keys still resolve.
create table if not exists export_key_map (
    person_id   varchar not null,
    clinic_id   varchar not null,
    person_key  varchar not null,          -- HMAC-SHA256 under the export key of clinic_id NUL person_id, 32 hex chars
    primary key (clinic_id, person_key)
);

-- Follow-up (chronic.care.followup): per plan x as-of date, what changed since the plan started: one 'risk' row per
-- task (probability at the start -> now) and one 'target' row per item (baseline -> latest reading since the start).
create table if not exists followup (
    plan_id        varchar not null,
    person_id      varchar not null,
    as_of          date not null,
    kind           varchar not null,       -- risk | target
    task           varchar,
    item_id        varchar,                -- target rows: the plan item
    measure        varchar,                -- 'probability' (risk rows) or the target measure
    baseline_value double,                 -- probability at the plan start, or the item's baseline
    latest_value   double,                 -- probability at as_of, or the latest day's mean reading
    latest_at      timestamp,
    n_readings     integer,                -- readings of the measure since the plan start
    delta          double,                 -- latest - baseline
    band_start     varchar,
    band_now       varchar,
    met            boolean,                -- null: not judged yet (no reading)
    progress       double                  -- share of the way from baseline to target, 0-1
);

-- Flags raised at a follow-up: overdue (no contact since the plan start and the follow-up date passed) and
-- worsening (risk up by >= the set amount or into a higher band; a target indicator moving the wrong way).
create table if not exists flag (
    plan_id     varchar not null,
    person_id   varchar not null,
    as_of       date not null,
    flag        varchar not null,          -- overdue | worsening
    task        varchar,
    item_id     varchar,
    detail      varchar not null
);

-- Plan changes proposed at a follow-up: escalate (no progress after review_days -> level + 1), refer (a reading
-- crossed a diagnostic threshold of tasks.toml), relax_monitoring (targets met -> monitoring half as often).
create table if not exists plan_adjustment (
    plan_id         varchar not null,
    person_id       varchar not null,
    as_of           date not null,
    action          varchar not null,      -- escalate | refer | relax_monitoring
    item_id         varchar,               -- the item changed (null for refer: a new item)
    task            varchar,
    new_level       integer,
    new_review_days integer,
    detail          varchar not null
);
