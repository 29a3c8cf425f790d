-- Risk rows of one as-of date (the latest scoring of each person x task that day).
with ranked as (
    select *, row_number() over (partition by person_id, task order by scored_at desc) as rn
    from risk
    where as_of = $as_of
),

final as (
    select * exclude (rn) from ranked where rn = 1
)

select * from final
