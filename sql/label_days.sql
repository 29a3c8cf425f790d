-- Per person x task x local day: was any defining reading that day abnormal, and does an abnormal day count as
-- confirmed (enough abnormal days within a year, spanning the persistence the guideline asks)?
-- Input: `observation`, `person`, `egfr_readings(person_id, measure, value, effective_at, tz_offset_min)` (eGFR
-- computed from creatinine by chronic.clinical), `label_rules(task, measure, op, threshold, sex)`,
-- `label_tasks(task, confirm_days, persist_days)`.
with readings as (
    select person_id, measure, value, effective_at, tz_offset_min
    from observation
    where measure in (select measure from label_rules)
    union all
    select person_id, measure, value, effective_at, tz_offset_min
    from egfr_readings
),

flagged as (
    select
        o.person_id,
        r.task,
        -- the person's local calendar day: "different days" are days where they live
        cast(o.effective_at + to_minutes(coalesce(o.tz_offset_min, 0)) as date) as day,
        case r.op
            when '>=' then o.value >= r.threshold
            when '>' then o.value > r.threshold
            when '<' then o.value < r.threshold
            when '<=' then o.value <= r.threshold
        end as abnormal
    from readings as o
    join person as p on p.person_id = o.person_id
    join label_rules as r on r.measure = o.measure and (r.sex is null or r.sex = p.sex)
),

daily as (
    select person_id, task, day, bool_or(abnormal) as abnormal
    from flagged
    group by all
),

abnormal_days as (
    select
        d.person_id,
        d.task,
        d.day,
        t.confirm_days,
        t.persist_days,
        count(*) over w as abnormal_days_within_year,
        max(d.day) over w as last_abnormal_within_year
    from daily as d
    join label_tasks as t on t.task = d.task
    where d.abnormal
    window w as (partition by d.person_id, d.task order by d.day range between current row and interval 365 days following)
),

final as (
    select
        d.person_id,
        d.task,
        d.day,
        d.abnormal,
        coalesce(
            a.abnormal_days_within_year >= a.confirm_days
            and date_diff('day', a.day, a.last_abnormal_within_year) >= a.persist_days,
            false
        ) as confirmed
    from daily as d
    left join abnormal_days as a on a.person_id = d.person_id and a.task = d.task and a.day = d.day
)

select * from final
