-- FHIR Conditions -> condition rows. ICD-10 codings are used as they are (dot removed, upper case); SNOMED CT
-- codings of the conditions chronic needs are mapped to ICD-10 through `ref_snomed_icd10` (snomed_icd10.toml).
-- Input: `json_lines`. Params: $now.
with conditions as (
    select
        line,
        raw,
        regexp_extract((j->>'$.subject.reference'), '(?:Patient/|urn:uuid:)?([^/]+)$', 1) as person_id,
        coalesce(from_json((j->'$.code.coding'), '[{"system":"VARCHAR","code":"VARCHAR"}]'), []) as codings,
        coalesce((j->>'$.onsetDateTime'), (j->>'$.onsetPeriod.start')) as onset_raw,
        (j->>'$.recordedDate') as recorded_raw
    from json_lines
    where valid and (j->>'$.resourceType') = 'Condition'
),

coded as (
    select
        c.*,
        coalesce(
            list_filter(
                list_transform(codings, lambda x: case when x.system like 'http://hl7.org/fhir/sid/icd-10%'
                    then upper(replace(x.code, '.', '')) end),
                lambda x: x is not null
            )[1],
            (select m.icd10 from ref_snomed_icd10 as m
             where list_contains(list_transform(codings, lambda x: x.code), m.snomed) limit 1)
        ) as icd10,
        try_cast(left(onset_raw, 10) as date) as onset_date,
        try_cast(left(recorded_raw, 10) as date) as recorded_date
    from conditions as c
),

final as (
    select
        concat_ws('|', person_id, icd10, coalesce(onset_date::varchar, '')) as record_key,
        line,
        raw,
        person_id,
        icd10,
        onset_date,
        recorded_date,
        case
            when person_id is null or person_id = '' then 'missing_field'
            when len(codings) = 0 then 'missing_field'
            when icd10 is null then 'unknown_code'
            when onset_raw is not null and onset_date is null then 'impossible_timestamp'
            when onset_date > $now::date then 'future_timestamp'
        end as reason,
        case
            when person_id is null or person_id = '' then 'subject'
            when len(codings) = 0 or icd10 is null then 'code'
            when onset_raw is not null and (onset_date is null or onset_date > $now::date) then 'onsetDateTime'
        end as field
    from coded
)

select * from final
