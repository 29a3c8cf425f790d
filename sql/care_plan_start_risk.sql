-- For each plan in force at an as-of date, its person's risk rows on the plan's start date.
with plans as (
    select plan_id, person_id, start_date from plan where status = 'active' and start_date < $as_of
),

ranked as (
    select r.*, row_number() over (partition by r.person_id, r.task order by r.scored_at desc) as rn
    from risk r
    join plans p on p.person_id = r.person_id and r.as_of = p.start_date
),

final as (
    select * exclude (rn) from ranked where rn = 1
)

select * from final
