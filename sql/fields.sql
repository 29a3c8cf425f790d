-- Person-level fields at an as-of date (docs/fields.md, catalog features/fields.toml): the person snapshot with
-- eGFR, fields derived from the latest values, diagnosis history, drugs active at as-of, family history,
-- lifestyle, care use and data completeness. Window statistics of the measures come from
-- sql/fields_measures.sql. Everything is read strictly before $as_of (midnight UTC, as in sql/snapshot.sql).
-- Missing stays null; counts are 0 when the archive holds nothing (a fact, not a guess); diagnosis, drug and
-- family flags are 0 when the archive holds no record (FHIR exports carry positive findings only, as in
-- sql/snapshot.sql).
-- Input: view `fields_snapshot` (sql/snapshot.sql rows with `egfr` added by chronic.clinical.score), tables
-- `observation`, `condition`, `medication`, `family_history`, `lifestyle`.
-- Params: $as_of (date), $measures (varchar[]: the measures that count towards data completeness).

with recent_days as (
    -- different local days (as in sql/label_days.sql) with a reading in the last 365 days, EHR or not
    select distinct
        person_id,
        cast(effective_at + to_minutes(coalesce(tz_offset_min, 0)) as date) as local_day,
        source = 'fhir_ndjson' as ehr
    from observation
    where effective_at < $as_of::timestamp
        and effective_at >= $as_of::timestamp - interval 365 day
),

care as (
    select
        person_id,
        -- clinic visits: days with an EHR (FHIR) observation
        count(*) filter (where ehr) as visits_365d,
        -- self-monitoring: days with a home-device or mHealth reading
        count(*) filter (where not ehr) as device_days_365d
    from recent_days
    group by person_id
),

completeness as (
    -- share of the window measures ever measured before as-of (distinct first: cheaper than count(distinct))
    select person_id, count(*) / len($measures::varchar[]) as data_completeness
    from (
        select distinct person_id, measure
        from observation
        where effective_at < $as_of::timestamp
            and list_contains($measures::varchar[], measure)
    )
    group by person_id
),

diagnoses as (
    -- first diagnosis date per group, any record before as-of (onset, else recorded date, as in snapshot.sql)
    select
        person_id,
        min(dx_date) filter (where icd10 similar to 'E1[0-4].*') as first_diabetes,
        min(dx_date) filter (where icd10 like 'R73%') as first_prediabetes,
        min(dx_date) filter (where icd10 similar to 'I1[0-5].*') as first_hypertension,
        min(dx_date) filter (where icd10 like 'E78%') as first_dyslipidemia,
        min(dx_date) filter (where icd10 like 'E790%' or icd10 like 'M10%') as first_hyperuricemia,
        min(dx_date) filter (where icd10 like 'N18%') as first_ckd,
        min(dx_date) filter (where icd10 similar to 'I2[0-5].*') as first_chd,
        min(dx_date) filter (where icd10 similar to 'I6[0-4].*') as first_stroke,
        min(dx_date) filter (where icd10 like 'E66%') as first_obesity,
        min(dx_date) filter (where icd10 like 'O244%') as first_gdm
    from (select person_id, icd10, coalesce(onset_date, recorded_date) as dx_date from condition)
    where dx_date < $as_of::date
    group by person_id
),

drugs as (
    -- drugs active at as-of: started before it (or start unknown, as in snapshot.sql) and not ended before it;
    -- records entered in error or not taken never count
    select
        person_id,
        bool_or(atc like 'A10%') as drug_a10,
        bool_or(atc like 'C02%') as drug_c02,
        bool_or(atc like 'C03%') as drug_c03,
        bool_or(atc like 'C07%') as drug_c07,
        bool_or(atc like 'C08%') as drug_c08,
        bool_or(atc like 'C09%') as drug_c09,
        bool_or(atc like 'C10%') as drug_c10,
        bool_or(atc like 'M04%') as drug_m04,
        bool_or(atc like 'B01%') as drug_b01,
        count(distinct left(atc, 3)) filter (where atc similar to 'C0[23789].*') as n_antihypertensive_classes
    from medication
    where (start_date < $as_of::date or start_date is null)
        and (end_date is null or end_date >= $as_of::date)
        and coalesce(status, '') not in ('entered-in-error', 'not-taken')
    group by person_id
),

family as (
    -- first-degree relatives (parent, sibling, child) with the disease
    select
        person_id,
        bool_or(icd10 similar to 'I2[0-5].*' and degree = 1) as family_chd,
        bool_or(icd10 similar to 'I6[0-4].*' and degree = 1) as family_stroke,
        bool_or(icd10 similar to 'I1[0-5].*' and degree = 1) as family_hypertension
    from family_history
    group by person_id
),

final as (
    select
        s.* exclude (as_of, smoking_status),
        -- derived from the latest values
        case s.sex when 'M' then (s.waist_cm >= 90)::int when 'F' then (s.waist_cm >= 85)::int end
            as central_obesity,
        s.waist_cm / s.height_cm as waist_height_ratio,
        s.tc_mmol - s.hdl_mmol as non_hdl_mmol,
        s.tc_mmol / s.hdl_mmol as tc_hdl_ratio,
        s.sbp - s.dbp as pulse_pressure,
        -- diagnosis history
        (d.first_diabetes is not null)::int as dx_diabetes,
        (d.first_prediabetes is not null)::int as dx_prediabetes,
        (d.first_dyslipidemia is not null)::int as dx_dyslipidemia,
        (d.first_hyperuricemia is not null)::int as dx_hyperuricemia,
        (d.first_ckd is not null)::int as dx_ckd,
        (d.first_chd is not null)::int as dx_chd,
        (d.first_stroke is not null)::int as dx_stroke,
        (d.first_obesity is not null)::int as dx_obesity,
        date_diff('day', d.first_diabetes, $as_of::date) / 365.25 as dx_diabetes_years,
        date_diff('day', d.first_prediabetes, $as_of::date) / 365.25 as dx_prediabetes_years,
        date_diff('day', d.first_hypertension, $as_of::date) / 365.25 as dx_hypertension_years,
        date_diff('day', d.first_dyslipidemia, $as_of::date) / 365.25 as dx_dyslipidemia_years,
        date_diff('day', d.first_hyperuricemia, $as_of::date) / 365.25 as dx_hyperuricemia_years,
        date_diff('day', d.first_ckd, $as_of::date) / 365.25 as dx_ckd_years,
        date_diff('day', d.first_chd, $as_of::date) / 365.25 as dx_chd_years,
        date_diff('day', d.first_stroke, $as_of::date) / 365.25 as dx_stroke_years,
        date_diff('day', d.first_obesity, $as_of::date) / 365.25 as dx_obesity_years,
        date_diff('day', d.first_gdm, $as_of::date) / 365.25 as dx_gdm_years,
        -- drugs active at as-of
        coalesce(m.drug_a10, false)::int as drug_a10,
        coalesce(m.drug_c02, false)::int as drug_c02,
        coalesce(m.drug_c03, false)::int as drug_c03,
        coalesce(m.drug_c07, false)::int as drug_c07,
        coalesce(m.drug_c08, false)::int as drug_c08,
        coalesce(m.drug_c09, false)::int as drug_c09,
        coalesce(m.drug_c10, false)::int as drug_c10,
        coalesce(m.drug_m04, false)::int as drug_m04,
        coalesce(m.drug_b01, false)::int as drug_b01,
        coalesce(m.n_antihypertensive_classes, 0) as n_antihypertensive_classes,
        -- family history
        coalesce(f.family_chd, false)::int as family_chd,
        coalesce(f.family_stroke, false)::int as family_stroke,
        coalesce(f.family_hypertension, false)::int as family_hypertension,
        -- lifestyle
        s.smoking_status as smoking,
        -- care use and data completeness
        coalesce(c.visits_365d, 0) as visits_365d,
        coalesce(c.device_days_365d, 0) as device_days_365d,
        coalesce(k.data_completeness, 0.0) as data_completeness
    from fields_snapshot as s
    left join diagnoses as d on d.person_id = s.person_id
    left join drugs as m on m.person_id = s.person_id
    left join family as f on f.person_id = s.person_id
    left join care as c on c.person_id = s.person_id
    left join completeness as k on k.person_id = s.person_id
)

select * from final
