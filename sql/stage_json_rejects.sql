-- Lines of `json_lines` that cannot be read, in the shape `checked` needs for the quarantine: not a JSON object,
-- or (FHIR only, $fhir = true) an object without a resourceType.
with final as (
    select line, raw, pre_reason as reason, 'line' as field
    from json_lines
    where pre_reason is not null
    union all
    select line, raw, 'missing_field' as reason, 'resourceType' as field
    from json_lines
    where $fhir and valid and (j->>'$.resourceType') is null
)

select * from final
