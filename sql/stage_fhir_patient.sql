-- FHIR Patients -> person rows (with a reason when unusable). Region from the province (regions.toml), urban/rural
-- from chronic's residence-type extension when present. Input: `json_lines`, view `ref_provinces`. Params: $now.
with patients as (
    select
        line,
        raw,
        nullif((j->>'$.id'), '') as person_id,
        regexp_extract((j->>'$.managingOrganization.reference'), '([^/]+)$', 1) as clinic_id,
        case (j->>'$.gender') when 'male' then 'M' when 'female' then 'F' end as sex,
        (j->>'$.birthDate') as birth_raw,
        try_cast((j->>'$.birthDate') as date) as birth_date,
        (j->>'$.address[0].state') as province,
        (
            select e.valueCode
            from (select unnest(coalesce(from_json(
                (j->'$.address[0].extension'), '[{"url":"VARCHAR","valueCode":"VARCHAR"}]'), [])) as e)
            where e.url = 'https://chronic.example/fhir/StructureDefinition/residence-type'
            limit 1
        ) as residence
    from json_lines
    where valid and (j->>'$.resourceType') = 'Patient'
),

final as (
    select
        concat_ws('|', p.person_id, p.clinic_id, p.sex, p.birth_raw, p.province, p.residence) as record_key,
        p.line,
        p.raw,
        p.person_id,
        nullif(p.clinic_id, '') as clinic_id,
        p.sex,
        p.birth_date,
        p.province,
        r.north,
        case p.residence when 'urban' then true when 'rural' then false end as urban,
        case
            when p.person_id is null then 'missing_field'
            when p.birth_raw is not null and p.birth_date is null then 'impossible_timestamp'
            when p.birth_date > $now::date then 'future_timestamp'
        end as reason,
        case
            when p.person_id is null then 'id'
            when p.birth_raw is not null and (p.birth_date is null or p.birth_date > $now::date) then 'birthDate'
        end as field
    from patients as p
    left join ref_provinces as r on r.province_key = lower(trim(p.province))
)

select * from final
