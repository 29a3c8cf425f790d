-- plans.csv of one clinic: the plan in force (temp table `export_plan`) with one row per item (a plan without items
-- keeps one row). Neither plan_id (a hash of the person id) nor item_id leaves the archive: items are numbered
-- 1..n within the plan in item_id order instead.
-- Params: $clinic (varchar).
with plans as (
    select *
    from export_plan
    where clinic_id = $clinic
),

items as (
    select
        i.*,
        row_number() over (partition by i.plan_id order by i.item_id, i.item_type, i.reason) as item_no
    from plan_item as i
    semi join plans as p on p.plan_id = i.plan_id
),

final as (
    select
        p.person_key,
        p.start_date as plan_start,
        p.status as plan_status,
        p.band,
        p.next_followup,
        p.summary,
        i.item_no,
        i.item_type,
        i.task,
        i.reason,
        i.target_measure,
        i.target_op,
        i.target_value,
        i.baseline_value,
        i.review_days,
        i.guideline,
        i.level
    from plans as p
    left join items as i on i.plan_id = p.plan_id
)

select * from final
