-- Open mHealth data points -> staged readings (shape of stage_obs), one per body field of the schema
-- (blood-pressure gives two). Input: `json_lines`, view `ref_mhealth_fields(schema_name, body_field, code)`.
with points as (
    select
        line,
        raw,
        j,
        nullif((j->>'$.header.user_id'), '') as person_id,
        (j->>'$.header.schema_id.name') as schema_name,
        coalesce(
            (j->>'$.body.effective_time_frame.date_time'), (j->>'$.body.effective_time_frame.time_interval.start_date_time')
        ) as ts_raw,
        (j->>'$.header.acquisition_provenance.source_name') as device_id
    from json_lines
    where valid
),

known as (
    select p.*, f.body_field, f.code
    from points as p
    join ref_mhealth_fields as f on f.schema_name = p.schema_name
),

unknown as (
    select p.*, null::varchar as body_field, null::varchar as code
    from points as p
    anti join ref_mhealth_fields as f on f.schema_name = p.schema_name
),

final as (
    select
        line,
        person_id,
        null::varchar as clinic_id,
        device_id,
        ts_raw,
        coalesce(code, 'omh:' || coalesce(schema_name, '')) as code,
        json_extract_string(j, '$.body.' || body_field || '.value') as value_raw,
        json_extract_string(j, '$.body.' || body_field || '.unit') as unit,
        'body.' || coalesce(body_field, '?') || '.value' as value_path,
        'body.' || coalesce(body_field, '?') || '.unit' as unit_path,
        cast(line as varchar) as pair_key,
        case when schema_name is null then 'missing_field' end as pre_reason,
        case when schema_name is null then 'header.schema_id.name' end as pre_field
    from (select * from known union all select * from unknown)
)

select * from final
