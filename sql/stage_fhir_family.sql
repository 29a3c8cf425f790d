-- FHIR FamilyMemberHistory -> one family_history row per (relative, condition). Degree of relationship from the
-- v3 RoleCode (`ref_relationships`). Input: `json_lines`.
with fmh as (
    select
        line,
        raw,
        regexp_extract((j->>'$.patient.reference'), '(?:Patient/|urn:uuid:)?([^/]+)$', 1) as person_id,
        coalesce(from_json((j->'$.relationship.coding'), '[{"system":"VARCHAR","code":"VARCHAR"}]'), [])[1].code
            as relationship,
        coalesce(
            from_json((j->'$.condition'), '[{"code":{"coding":[{"system":"VARCHAR","code":"VARCHAR"}]}}]'), []
        ) as conditions
    from json_lines
    where valid and (j->>'$.resourceType') = 'FamilyMemberHistory'
),

one_per_condition as (
    select
        line,
        raw,
        person_id,
        relationship,
        unnest(case when len(conditions) = 0 then [null] else conditions end) as cond
    from fmh
),

coded as (
    select
        o.*,
        (
            select upper(replace(x.code, '.', ''))
            from (select unnest(o.cond.code.coding) as x)
            where x.system like 'http://hl7.org/fhir/sid/icd-10%'
            limit 1
        ) as icd10
    from one_per_condition as o
),

final as (
    select
        concat_ws('|', c.person_id, upper(c.relationship), c.icd10) as record_key,
        c.line,
        c.raw,
        c.person_id,
        c.relationship,
        r.degree,
        c.icd10,
        case
            when c.person_id is null or c.person_id = '' then 'missing_field'
            when c.relationship is null then 'missing_field'
            when c.cond is null then 'missing_field'
            when c.icd10 is null then 'unknown_code'
        end as reason,
        case
            when c.person_id is null or c.person_id = '' then 'patient'
            when c.relationship is null then 'relationship'
            when c.cond is null or c.icd10 is null then 'condition.code'
        end as field
    from coded as c
    left join ref_relationships as r on r.code = upper(c.relationship)
)

select * from final
