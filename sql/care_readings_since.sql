-- Readings of people with a plan in force, from their plan's start up to (not including) the as-of date.
with plans as (
    select person_id, min(start_date) as since from plan where status = 'active' and start_date < $as_of
    group by person_id
),

final as (
    select o.person_id, o.measure, o.value, o.effective_at
    from observation o
    join plans p on p.person_id = o.person_id
    where o.effective_at >= cast(p.since as timestamp) and o.effective_at < cast($as_of as timestamp)
)

select * from final
