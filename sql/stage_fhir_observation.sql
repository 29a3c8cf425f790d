-- FHIR Observations that carry a measurement -> staged readings (shape of stage_obs). A blood-pressure panel
-- (LOINC 85354-9) gives one reading per component; lifestyle answers are staged by stage_fhir_lifestyle.sql.
-- Input: table `json_lines(line, raw, valid, j, pre_reason)`, view `ref_codes`, `ref_lifestyle_codes`.
with obs as (
    select line, raw, j
    from json_lines
    where valid and (j->>'$.resourceType') = 'Observation'
),

coded as (
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
        ) as codes,
        (j->'$.component') is not null as has_components
    from obs
),

known as (
    select list(code) || ['85354-9'] as known_codes from ref_codes
),

-- the first coding we know, else the first coding as received (so the quarantine names it)
picked as (
    select
        coded.*,
        coalesce(list_filter(codes, lambda c: list_contains(known_codes, c))[1], codes[1]) as code
    from coded, known
    where not list_has_any(codes, (select list(code) from ref_lifestyle_codes))
),

single as (
    select
        line,
        raw,
        person_id,
        ts_raw,
        code,
        (j->>'$.valueQuantity.value') as value_raw,
        coalesce((j->>'$.valueQuantity.code'), (j->>'$.valueQuantity.unit')) as unit,
        'valueQuantity.value' as value_path,
        'valueQuantity.code' as unit_path,
        cast(line as varchar) as pair_key
    from picked
    where code is distinct from '85354-9'
),

components as (
    select
        line,
        raw,
        person_id,
        ts_raw,
        generate_subscripts(from_json((j->'$.component'), '["JSON"]'), 1) - 1 as comp_index,
        unnest(from_json(
            (j->'$.component'),
            '[{"code":{"coding":[{"system":"VARCHAR","code":"VARCHAR"}]},"valueQuantity":{"value":"VARCHAR","unit":"VARCHAR","code":"VARCHAR"}}]'
        )) as comp
    from picked
    where code = '85354-9'
),

panel as (
    select
        line,
        raw,
        person_id,
        ts_raw,
        comp.code.coding[1].code as code,
        comp.valueQuantity.value as value_raw,
        coalesce(comp.valueQuantity.code, comp.valueQuantity.unit) as unit,
        'component[' || comp_index || '].valueQuantity.value' as value_path,
        'component[' || comp_index || '].valueQuantity.code' as unit_path,
        cast(line as varchar) as pair_key
    from components
),

final as (
    select
        line,
        person_id,
        null::varchar as clinic_id,
        null::varchar as device_id,
        ts_raw,
        code,
        value_raw,
        unit,
        value_path,
        unit_path,
        pair_key,
        null::varchar as pre_reason,
        null::varchar as pre_field
    from (select * from single union all select * from panel)
)

select * from final
