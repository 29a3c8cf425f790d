-- Items of the plans in force at an as-of date.
with plans as (
    select plan_id from plan where status = 'active' and start_date < $as_of
),

final as (
    select i.*
    from plan_item i
    join plans using (plan_id)
)

select * from final
