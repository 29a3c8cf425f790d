-- Fields per person at an as-of date (docs/fields.md, catalog features/fields.toml): the person snapshot plus
-- window statistics of every vital and lab measure, diagnosis history, drugs active at as-of, family history,
-- lifestyle and care use. Everything is read strictly before $as_of (midnight UTC, as in sql/snapshot.sql).
-- Missing stays null; counts are 0 when the archive holds nothing (a fact, not a guess); diagnosis, drug and
-- family flags are 0 when the archive holds no record (FHIR exports carry positive findings only).
-- Input: view `fields_snapshot` (sql/snapshot.sql rows with `egfr` added by chronic.clinical.score), tables
-- `person`, `observation`, `condition`, `medication`, `family_history`, `lifestyle`.
-- Params: $as_of (date), $lookback_days (int).
--
-- Output: every statistic for every window measure, pivoted to `<measure>_<stat>` columns; chronic.features
-- keeps those the catalog lists (the rest cost little to compute and nothing to drop).

with window_measure(measure) as (
    -- the vital and lab measures that get window statistics (the PIVOT below repeats this list: keep in step)
    values ('sbp'), ('dbp'), ('heart_rate'), ('spo2'), ('temperature'), ('weight'), ('bmi'), ('waist'),
        ('body_fat'), ('muscle_pct'), ('body_water_pct'), ('glucose'), ('fpg'), ('hba1c'), ('tc'), ('hdl'),
        ('ldl'), ('tg'), ('uric_acid'), ('creatinine'), ('uacr')
),

abnormal_rule(measure, op, threshold, sex) as (
    -- A reading is abnormal when `value op threshold` (for `sex` only when set). Sources (clinical.md unless
    -- stated): Chinese hypertension guideline 2018 (grade 1: SBP >= 140, DBP >= 90); ADA / WHO 1999 / CDS 2020
    -- (FPG >= 7.0, HbA1c >= 6.5, random glucose >= 11.1 mmol/L); Chinese adult dyslipidemia guideline 2016 /
    -- lipid guideline 2023 (TC >= 6.2, LDL-C >= 4.1, HDL-C < 1.0, TG >= 2.3); Chinese hyperuricemia and gout
    -- guideline 2019 (UA > 420 umol/L, both sexes); KDIGO 2012 (UACR >= 30 mg/g); China obesity cut-offs
    -- (WGOC / Chinese adult overweight and obesity guideline: BMI >= 28; central obesity waist >= 90 cm men,
    -- >= 85 cm women); WHO pulse oximetry training manual 2011 (SpO2 normal 95-100 %: < 95 abnormal);
    -- tachycardia: resting HR > 100 /min (AHA / ACC); fever: axillary temperature >= 37.3 C (Chinese clinical
    -- diagnostics). Creatinine has no rule of its own: eGFR (age and sex) is the kidney criterion.
    values
        ('sbp', '>=', 140.0, null), ('dbp', '>=', 90.0, null),
        ('fpg', '>=', 7.0, null), ('hba1c', '>=', 6.5, null), ('glucose', '>=', 11.1, null),
        ('tc', '>=', 6.2, null), ('ldl', '>=', 4.1, null), ('hdl', '<', 1.0, null), ('tg', '>=', 2.3, null),
        ('uric_acid', '>', 420.0, null), ('uacr', '>=', 30.0, null),
        ('bmi', '>=', 28.0, null), ('waist', '>=', 90.0, 'M'), ('waist', '>=', 85.0, 'F'),
        ('spo2', '<', 95.0, null), ('heart_rate', '>', 100.0, null), ('temperature', '>=', 37.3, null)
),

readings as (
    -- every reading before as-of (no lower bound: completeness and visits need the whole history), with the
    -- windows it falls in, its time in years relative to as-of (for slopes), its local day and abnormal flag
    select
        o.person_id,
        o.measure,
        o.value,
        o.effective_at,
        o.source,
        -- the person's local calendar day, as in sql/label_days.sql: "different days" are days where they live
        cast(o.effective_at + to_minutes(coalesce(o.tz_offset_min, 0)) as date) as local_day,
        -- years before as-of (negative): small numbers keep the least-squares sums well conditioned
        epoch(o.effective_at - $as_of::timestamp) / (365.25 * 86400) as t_years,
        o.effective_at >= $as_of::timestamp - interval 30 day as in_30,
        o.effective_at >= $as_of::timestamp - interval 90 day as in_90,
        o.effective_at >= $as_of::timestamp - interval 365 day as in_365,
        o.effective_at >= $as_of::timestamp - to_days($lookback_days::int) as in_lookback,
        case r.op
            when '>=' then o.value >= r.threshold
            when '>' then o.value > r.threshold
            when '<' then o.value < r.threshold
        end as abnormal
    from observation as o
    left join person as p on p.person_id = o.person_id
    left join abnormal_rule as r on r.measure = o.measure and (r.sex is null or r.sex = p.sex)
    where o.effective_at < $as_of::timestamp
),

measure_stats as (
    -- per person x measure and window: mean, min, max, least-squares slope per year (null with < 3 readings or
    -- < 2 different days), reading count, abnormal count (null without readings or without a rule)
    select
        person_id,
        measure,
        avg(value) filter (where in_30) as mean_30d,
        min(value) filter (where in_30) as min_30d,
        max(value) filter (where in_30) as max_30d,
        case when count(*) filter (where in_30) >= 3
                and max(local_day) filter (where in_30) > min(local_day) filter (where in_30)
            then regr_slope(value, t_years) filter (where in_30) end as slope_30d,
        count(*) filter (where in_30) as n_30d,
        sum(abnormal::int) filter (where in_30)::bigint as n_abnormal_30d,

        avg(value) filter (where in_90) as mean_90d,
        min(value) filter (where in_90) as min_90d,
        max(value) filter (where in_90) as max_90d,
        case when count(*) filter (where in_90) >= 3
                and max(local_day) filter (where in_90) > min(local_day) filter (where in_90)
            then regr_slope(value, t_years) filter (where in_90) end as slope_90d,
        count(*) filter (where in_90) as n_90d,
        sum(abnormal::int) filter (where in_90)::bigint as n_abnormal_90d,

        avg(value) filter (where in_365) as mean_365d,
        min(value) filter (where in_365) as min_365d,
        max(value) filter (where in_365) as max_365d,
        case when count(*) filter (where in_365) >= 3
                and max(local_day) filter (where in_365) > min(local_day) filter (where in_365)
            then regr_slope(value, t_years) filter (where in_365) end as slope_365d,
        count(*) filter (where in_365) as n_365d,
        sum(abnormal::int) filter (where in_365)::bigint as n_abnormal_365d,

        -- the whole look-back window: labs are drawn about once a year, so their slopes need more than a year
        avg(value) filter (where in_lookback) as mean_lookback,
        min(value) filter (where in_lookback) as min_lookback,
        max(value) filter (where in_lookback) as max_lookback,
        case when count(*) filter (where in_lookback) >= 3
                and max(local_day) filter (where in_lookback) > min(local_day) filter (where in_lookback)
            then regr_slope(value, t_years) filter (where in_lookback) end as slope_lookback,
        count(*) filter (where in_lookback) as n_lookback,
        sum(abnormal::int) filter (where in_lookback)::bigint as n_abnormal_lookback,

        date_diff('day', max(effective_at) filter (where in_lookback)::date, $as_of::date) as days_since_last
    from readings
    where measure in (select measure from window_measure)
    group by person_id, measure
),

measure_grid as (
    -- every person x window measure, so that reading counts are 0 (not null) for a measure never taken
    select
        g.person_id,
        g.measure,
        s.* exclude (person_id, measure, n_30d, n_90d, n_365d, n_lookback),
        coalesce(s.n_30d, 0) as n_30d,
        coalesce(s.n_90d, 0) as n_90d,
        coalesce(s.n_365d, 0) as n_365d,
        coalesce(s.n_lookback, 0) as n_lookback
    from (select p.person_id, m.measure from person as p cross join window_measure as m) as g
    left join measure_stats as s on s.person_id = g.person_id and s.measure = g.measure
),

measure_wide as (
    pivot measure_grid
    on measure in (
        'sbp', 'dbp', 'heart_rate', 'spo2', 'temperature', 'weight', 'bmi', 'waist', 'body_fat', 'muscle_pct',
        'body_water_pct', 'glucose', 'fpg', 'hba1c', 'tc', 'hdl', 'ldl', 'tg', 'uric_acid', 'creatinine', 'uacr'
    )
    using
        first(mean_30d) as mean_30d, first(min_30d) as min_30d, first(max_30d) as max_30d,
        first(slope_30d) as slope_30d, first(n_30d) as n_30d, first(n_abnormal_30d) as n_abnormal_30d,
        first(mean_90d) as mean_90d, first(min_90d) as min_90d, first(max_90d) as max_90d,
        first(slope_90d) as slope_90d, first(n_90d) as n_90d, first(n_abnormal_90d) as n_abnormal_90d,
        first(mean_365d) as mean_365d, first(min_365d) as min_365d, first(max_365d) as max_365d,
        first(slope_365d) as slope_365d, first(n_365d) as n_365d, first(n_abnormal_365d) as n_abnormal_365d,
        first(mean_lookback) as mean_lookback, first(min_lookback) as min_lookback,
        first(max_lookback) as max_lookback, first(slope_lookback) as slope_lookback,
        first(n_lookback) as n_lookback, first(n_abnormal_lookback) as n_abnormal_lookback,
        first(days_since_last) as days_since_last
    group by person_id
),

care as (
    select
        person_id,
        -- clinic visits: different local days with an EHR (FHIR) observation in the last year
        count(distinct local_day) filter (where source = 'fhir_ndjson' and in_365) as visits_365d,
        -- self-monitoring: different local days with a home-device or mHealth reading in the last year
        count(distinct local_day) filter (where source <> 'fhir_ndjson' and in_365) as device_days_365d,
        -- share of the window measures ever measured before as-of
        count(distinct measure) filter (where measure in (select measure from window_measure))
            / (select count(*) from window_measure) as data_completeness
    from readings
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

lifestyle_latest as (
    -- the latest answer to each question before as-of (undated answers count, as in snapshot.sql)
    select
        person_id,
        max(value_text) filter (where item = 'smoking') as smoking,
        max(value_num) filter (where item = 'exercise_days_week') as exercise_days_week,
        max(value_num) filter (where item = 'exercise_min_day') as exercise_min_day,
        max(value_text) filter (where item = 'high_salt_diet') as high_salt_diet
    from (
        select person_id, item, arg_max(value_text, effective_at) as value_text,
            arg_max(value_num, effective_at) as value_num
        from lifestyle
        where effective_at < $as_of::timestamp or effective_at is null
        group by person_id, item
    )
    group by person_id
),

final as (
    select
        s.* exclude (as_of),
        -- derived from the latest values
        case s.sex when 'M' then (s.waist_cm >= 90)::int when 'F' then (s.waist_cm >= 85)::int end
            as central_obesity,
        s.waist_cm / s.height_cm as waist_height_ratio,
        s.tc_mmol - s.hdl_mmol as non_hdl_mmol,
        s.tc_mmol / s.hdl_mmol as tc_hdl_ratio,
        s.sbp - s.dbp as pulse_pressure,
        w.* exclude (person_id),
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
        case when l.smoking in ('never', 'former', 'current') then l.smoking end as smoking,
        case when l.exercise_days_week >= 0 and l.exercise_min_day >= 0
            then l.exercise_days_week * l.exercise_min_day end as exercise_min_week,
        case l.high_salt_diet when 'true' then 1 when 'false' then 0 end as high_salt_diet,
        -- care use and data completeness
        coalesce(c.visits_365d, 0) as visits_365d,
        coalesce(c.device_days_365d, 0) as device_days_365d,
        coalesce(c.data_completeness, 0.0) as data_completeness
    from fields_snapshot as s
    left join measure_wide as w on w.person_id = s.person_id
    left join diagnoses as d on d.person_id = s.person_id
    left join drugs as m on m.person_id = s.person_id
    left join family as f on f.person_id = s.person_id
    left join lifestyle_latest as l on l.person_id = s.person_id
    left join care as c on c.person_id = s.person_id
)

select * from final
