-- The clinics a clinic export at an as-of date covers: those of the people (`person.clinic_id`) with a risk score
-- at that date.
-- Params: $as_of (date).
with scored as (
    select distinct person_id
    from risk
    where as_of = $as_of::date
),

final as (
    select distinct p.clinic_id
    from person as p
    semi join scored as s on s.person_id = p.person_id
    where p.clinic_id is not null
)

select * from final
