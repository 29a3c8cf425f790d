-- Every risk row of one person up to the as-of date (the latest scoring of each task x as-of date).
-- Params: $person_id, $as_of (date).
with ranked as (
    select *, row_number() over (partition by task, as_of order by scored_at desc) as rn
    from risk
    where person_id = $person_id and as_of <= $as_of::date
),

final as (
    select * exclude (rn) from ranked where rn = 1
)

select * from final
order by task, as_of
