-- The people with the highest risk (any task) at an as-of date: whose pages the demo writes.
with ranked as (
    select person_id, max(probability) as top_probability
    from risk
    where as_of = $as_of
    group by person_id
),

final as (
    select person_id from ranked order by top_probability desc, person_id limit $n
)

select * from final
