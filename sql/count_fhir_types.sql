-- Resources per type in `json_lines`, to count the types chronic does not read (skipped, not quarantined).
with final as (
    select (j->>'$.resourceType') as resource_type, count(*) as n
    from json_lines
    where valid and (j->>'$.resourceType') is not null
    group by all
)

select * from final
