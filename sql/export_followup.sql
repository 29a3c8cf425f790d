-- followup_due.csv of one clinic: people whose plan in force (temp table `export_plan`) has its next follow-up
-- overdue (before the as-of date) or due within $due_days days after it: the clinic's call list.
-- Params: $as_of (date), $clinic (varchar), $due_days (int).
with plans as (
    select *
    from export_plan
    where clinic_id = $clinic
),

final as (
    select
        person_key,
        band,
        start_date as plan_start,
        next_followup,
        datediff('day', $as_of::date, next_followup) as days_until_followup,
        case when next_followup < $as_of::date then 'overdue' else 'due' end as followup_status
    from plans
    where next_followup <= $as_of::date + $due_days::int
)

select * from final
