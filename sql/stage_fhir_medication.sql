-- FHIR MedicationStatement (and MedicationRequest, which many EHR exports use instead) -> medication rows.
-- The ATC coding is what the labels and features read. Input: `json_lines`. Params: $now.
with meds as (
    select
        line,
        raw,
        regexp_extract(
            coalesce((j->>'$.subject.reference'), (j->>'$.patient.reference')), '(?:Patient/|urn:uuid:)?([^/]+)$', 1
        ) as person_id,
        coalesce(
            from_json((j->'$.medicationCodeableConcept.coding'), '[{"system":"VARCHAR","code":"VARCHAR"}]'), []
        ) as codings,
        coalesce((j->>'$.effectivePeriod.start'), (j->>'$.effectiveDateTime'), (j->>'$.authoredOn')) as start_raw,
        (j->>'$.effectivePeriod.end') as end_raw,
        (j->>'$.status') as status
    from json_lines
    where valid and (j->>'$.resourceType') in ('MedicationStatement', 'MedicationRequest')
),

coded as (
    select
        *,
        list_filter(codings, lambda x: x.system = 'http://www.whocc.no/atc')[1].code as atc,
        try_cast(left(start_raw, 10) as date) as start_date,
        try_cast(left(end_raw, 10) as date) as end_date
    from meds
),

final as (
    select
        concat_ws('|', person_id, upper(atc), coalesce(start_date::varchar, '')) as record_key,
        line,
        raw,
        person_id,
        upper(atc) as atc,
        start_date,
        end_date,
        status,
        case
            when person_id is null or person_id = '' then 'missing_field'
            when len(codings) = 0 then 'missing_field'
            when atc is null then 'unknown_code'
            when start_raw is not null and start_date is null then 'impossible_timestamp'
            when start_date > $now::date then 'future_timestamp'
        end as reason,
        case
            when person_id is null or person_id = '' then 'subject'
            when len(codings) = 0 or atc is null then 'medicationCodeableConcept'
            when start_raw is not null and (start_date is null or start_date > $now::date) then 'effectivePeriod.start'
        end as field
    from coded
)

select * from final
