-- Person snapshot at an as-of date: one row per person with the canonical fields every score, label and feature
-- reads (documented in docs/snapshot.md). Values are the latest strictly before $as_of within $lookback_days;
-- missing stays missing (null), except family-history and history flags, which are 0 when the archive holds no
-- record of them (FHIR exports carry positive findings only).
-- Params: $as_of (date), $lookback_days (int).
with window_obs as (
    select person_id, measure, value, effective_at
    from observation
    where effective_at < $as_of::timestamp
        and effective_at >= $as_of::timestamp - to_days($lookback_days::int)
),

latest as (
    select
        person_id,
        max(value) filter (where measure = 'height') as height_cm,
        max(value) filter (where measure = 'weight') as weight_kg,
        max(value) filter (where measure = 'bmi') as bmi_measured,
        max(value) filter (where measure = 'waist') as waist_cm,
        max(value) filter (where measure = 'sbp') as sbp,
        max(value) filter (where measure = 'dbp') as dbp,
        max(value) filter (where measure = 'heart_rate') as heart_rate,
        max(value) filter (where measure = 'spo2') as spo2,
        max(value) filter (where measure = 'tc') as tc_mmol,
        max(value) filter (where measure = 'hdl') as hdl_mmol,
        max(value) filter (where measure = 'ldl') as ldl_mmol,
        max(value) filter (where measure = 'tg') as tg_mmol,
        max(value) filter (where measure = 'fpg') as fpg_mmol,
        max(value) filter (where measure = 'glucose') as glucose_mmol,
        max(value) filter (where measure = 'hba1c') as hba1c_pct,
        max(value) filter (where measure = 'uric_acid') as uric_acid_umol,
        max(value) filter (where measure = 'creatinine') as creatinine_umol,
        max(value) filter (where measure = 'uacr') as uacr_mg_g,
        max(value) filter (where measure = 'body_fat') as body_fat_pct,
        max(value) filter (where measure = 'temperature') as temperature_c
    from (
        select person_id, measure, arg_max(value, effective_at) as value
        from window_obs
        group by person_id, measure
    )
    group by person_id
),

-- ever before as-of (no look-back): history flags
ever_high_glucose as (
    -- FINDRISC "ever found to have high blood glucose": impaired fasting glucose (WHO: FPG >= 6.1), HbA1c >= 5.7
    -- (ADA prediabetes), random glucose >= 7.8 (WHO impaired glucose tolerance cut-off)
    select distinct person_id
    from observation
    where effective_at < $as_of::timestamp
        and ((measure = 'fpg' and value >= 6.1) or (measure = 'hba1c' and value >= 5.7)
            or (measure = 'glucose' and value >= 7.8))
),

conditions as (
    select
        person_id,
        bool_or(icd10 similar to 'I1[0-5].*') as hypertension_dx,
        bool_or(icd10 similar to 'E1[0-4].*') as diabetes_dx,
        bool_or(icd10 similar to 'R73.*|E1[0-4].*') as high_glucose_dx,
        bool_or(icd10 like 'O244%') as gdm
    from condition
    where coalesce(onset_date, recorded_date) < $as_of::date
    group by person_id
),

medications as (
    select
        person_id,
        -- antihypertensives (clinical.md, Chinese hypertension guideline 2018): ATC C02, C03, C07, C08, C09
        bool_or(atc similar to 'C0[23789].*' and (end_date is null or end_date >= $as_of::date)) as bp_treated,
        bool_or(atc like 'A10%') as glucose_lowering
    from medication
    where start_date < $as_of::date or start_date is null
    group by person_id
),

family as (
    select
        person_id,
        case
            when bool_or(icd10 similar to 'E1[0-4].*' and degree = 1) then 'first'
            when bool_or(icd10 similar to 'E1[0-4].*' and degree = 2) then 'second'
            else 'none'
        end as family_diabetes,
        count(distinct relationship) filter (
            where icd10 similar to 'I1[0-5].*' and relationship in ('FTH', 'MTH', 'NFTH', 'NMTH')
        ) + max(case when icd10 similar to 'I1[0-5].*' and relationship = 'PRN' then 1 else 0 end)
            as parents_hypertension,
        -- ASCVD: coronary heart disease (I20-I25) or ischaemic stroke (I63, I64), first-degree relatives (China-PAR)
        bool_or(icd10 similar to 'I2[0-5].*|I6[34].*' and degree = 1) as family_ascvd
    from family_history
    group by person_id
),

lifestyle_latest as (
    select
        person_id,
        max(value_text) filter (where item = 'smoking') as smoking,
        max(value_num) filter (where item = 'exercise_days_week') as exercise_days_week,
        max(value_num) filter (where item = 'exercise_min_day') as exercise_min_day,
        max(value_text) filter (where item = 'veg_fruit_daily') as veg_fruit_daily,
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
        p.person_id,
        p.clinic_id,
        $as_of::date as as_of,
        date_diff('day', p.birth_date, $as_of::date) / 365.25 as age,
        p.sex,
        l.height_cm,
        l.weight_kg,
        coalesce(l.bmi_measured, round(l.weight_kg / ((l.height_cm / 100) ^ 2), 2)) as bmi,
        l.waist_cm,
        l.sbp,
        l.dbp,
        l.heart_rate,
        l.spo2,
        l.tc_mmol,
        l.hdl_mmol,
        l.ldl_mmol,
        l.tg_mmol,
        l.fpg_mmol,
        l.glucose_mmol,
        l.hba1c_pct,
        l.uric_acid_umol,
        l.creatinine_umol,
        l.uacr_mg_g,
        l.body_fat_pct,
        case s.smoking when 'current' then 1 when 'former' then 0 when 'never' then 0 end as smoker,
        -- WHO 2020: >= 150 min/week of moderate activity; Exercise Vital Sign = days/week x min/day
        case when s.exercise_days_week is not null and s.exercise_min_day is not null
            then (s.exercise_days_week * s.exercise_min_day >= 150)::int end as physically_active,
        case s.veg_fruit_daily when 'true' then 1 when 'false' then 0 end as veg_fruit_daily,
        -- the answers behind smoker / physically_active, for the features
        case when s.smoking in ('never', 'former', 'current') then s.smoking end as smoking_status,
        case when s.exercise_days_week >= 0 and s.exercise_min_day >= 0
            then s.exercise_days_week * s.exercise_min_day end as exercise_min_week,
        case s.high_salt_diet when 'true' then 1 when 'false' then 0 end as high_salt_diet,
        coalesce(m.bp_treated, false)::int as bp_treated,
        coalesce(c.hypertension_dx, false)::int as hypertension_dx,
        (coalesce(c.high_glucose_dx, false) or g.person_id is not null or coalesce(c.gdm, false))::int
            as history_high_glucose,
        coalesce(f.family_diabetes, 'none') as family_diabetes,
        coalesce(f.parents_hypertension, 0) as parents_hypertension,
        coalesce(f.family_ascvd, false)::int as family_ascvd,
        case when p.sex = 'F' then coalesce(c.gdm, false)::int when p.sex = 'M' then 0 end as gdm,
        -- known diabetes at as-of: a diagnosis or a glucose-lowering drug (ADA / CDS 2020); a screen-positive
        -- reading is a label matter (chronic.clinical.labels), not a known diagnosis
        (coalesce(c.diabetes_dx, false) or coalesce(m.glucose_lowering, false))::int as diabetes,
        p.north::int as north,
        p.urban::int as urban
    from person as p
    left join latest as l on l.person_id = p.person_id
    left join conditions as c on c.person_id = p.person_id
    left join medications as m on m.person_id = p.person_id
    left join family as f on f.person_id = p.person_id
    left join lifestyle_latest as s on s.person_id = p.person_id
    left join ever_high_glucose as g on g.person_id = p.person_id
)

select * from final
