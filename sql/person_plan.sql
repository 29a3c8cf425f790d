-- The plan of one person in force at the as-of date: the latest started on or before it (an active plan before a
-- superseded one of the same day), as sql/export_plan.sql reads it. Params: $person_id, $as_of (date).
with final as (
    select *
    from plan
    where person_id = $person_id and start_date <= $as_of::date
    qualify row_number() over (order by start_date desc, (status = 'active') desc, plan_id) = 1
)

select * from final
