-- FHIR Observations that answer a lifestyle question -> lifestyle rows with a reason when unusable.
-- Smoking status (LOINC 72166-2, SNOMED CT answers), Exercise Vital Sign (89555-7 days/week, 68516-4 min/day),
-- diet (chronic:veg-fruit-daily, chronic:high-salt-diet, valueBoolean).
-- Input: table `json_lines`, view `ref_lifestyle_codes(code, item)`, `ref_smoking_answers(snomed, value_text)`.
-- Params: $now.
with obs as (
    select
        line,
        raw,
        j,
        regexp_extract((j->>'$.subject.reference'), '(?:Patient/|urn:uuid:)?([^/]+)$', 1) as person_id,
        coalesce((j->>'$.effectiveDateTime'), (j->>'$.effectiveInstant'), (j->>'$.effectivePeriod.start')) as ts_raw,
        list_transform(
            coalesce(from_json((j->'$.code.coding'), '[{"system":"VARCHAR","code":"VARCHAR"}]'), []),
            lambda c: case
                when c.system = 'https://chronic.example/fhir/CodeSystem/measure' and not starts_with(c.code, 'chronic:')
                    then 'chronic:' || c.code
                else c.code end
        ) as codes
    from json_lines
    where valid and (j->>'$.resourceType') = 'Observation'
),

matched as (
    select o.*, l.item
    from obs as o
    join ref_lifestyle_codes as l on list_contains(o.codes, l.code)
),

valued as (
    select
        m.*,
        case
            when item = 'smoking' then s.value_text
            when item in ('veg_fruit_daily', 'high_salt_diet') then lower((j->>'$.valueBoolean'))
        end as value_text,
        case when item in ('exercise_days_week', 'exercise_min_day')
            then try_cast((j->>'$.valueQuantity.value') as double) end as value_num,
        timezone('UTC', try_cast(ts_raw as timestamptz)) as effective_at
    from matched as m
    left join ref_smoking_answers as s
        on list_contains(
            list_transform(
                coalesce(from_json((m.j->'$.valueCodeableConcept.coding'), '[{"system":"VARCHAR","code":"VARCHAR"}]'), []),
                lambda c: c.code
            ),
            s.snomed
        )
),

final as (
    select
        concat_ws('|', person_id, item, coalesce(effective_at::varchar, ''), coalesce(value_text, ''), coalesce(value_num::varchar, '')) as record_key,
        line,
        raw,
        person_id,
        item,
        value_text,
        value_num,
        effective_at,
        case
            when person_id is null or person_id = '' then 'missing_field'
            when value_text is null and value_num is null then 'missing_field'
            when ts_raw is not null and effective_at is null then 'impossible_timestamp'
            when effective_at > $now then 'future_timestamp'
        end as reason,
        case
            when person_id is null or person_id = '' then 'subject'
            when value_text is null and value_num is null then 'value'
            when ts_raw is not null and effective_at is null then 'effectiveDateTime'
            when effective_at > $now then 'effectiveDateTime'
        end as field
    from valued
)

select * from final
