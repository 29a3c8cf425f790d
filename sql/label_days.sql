-- Per person x task x local day: was the day's reading abnormal, and does that abnormal day start a confirmed
-- diagnosis? Input: `observation`, `person`, `egfr_readings(person_id, measure, value, effective_at, tz_offset_min)`
-- (eGFR from creatinine, chronic.clinical), `label_rules(task, measure, op, threshold, sex)`,
-- `label_tasks(task, confirm_days, persist_days)`. Params: $majority.
--
-- A day's value is the mean of that day's readings of a measure (as office BP is the mean of a visit's readings).
-- An abnormal day is confirmed when, in the year that starts with it, there are at least `confirm_days` abnormal
-- days (the guideline's repeats), they span `persist_days` (CKD: > 3 months), and they are at least $majority of
-- the days tested in that year: with home devices measuring often, a few noisy days above a threshold are not a
-- diagnosis when most days are normal.
with readings as (
    select person_id, measure, value, effective_at, tz_offset_min
    from observation
    where measure in (select measure from label_rules)
    union all
    select person_id, measure, value, effective_at, tz_offset_min
    from egfr_readings
),

day_means as (
    select
        person_id,
        measure,
        -- the person's local calendar day: "different days" are days where they live
        cast(effective_at + to_minutes(coalesce(tz_offset_min, 0)) as date) as day,
        avg(value) as value
    from readings
    group by all
),

flagged as (
    select
        d.person_id,
        r.task,
        d.day,
        case r.op
            when '>=' then d.value >= r.threshold
            when '>' then d.value > r.threshold
            when '<' then d.value < r.threshold
            when '<=' then d.value <= r.threshold
        end as abnormal
    from day_means as d
    join person as p on p.person_id = d.person_id
    join label_rules as r on r.measure = d.measure and (r.sex is null or r.sex = p.sex)
),

daily as (
    select person_id, task, day, bool_or(abnormal) as abnormal
    from flagged
    group by all
),

windowed as (
    select
        d.person_id,
        d.task,
        d.day,
        d.abnormal,
        t.confirm_days,
        t.persist_days,
        count(*) over w as tested_days_in_year,
        count(*) filter (where d.abnormal) over w as abnormal_days_in_year,
        max(d.day) filter (where d.abnormal) over w as last_abnormal_in_year
    from daily as d
    join label_tasks as t on t.task = d.task
    window w as (partition by d.person_id, d.task order by d.day range between current row and interval 365 days following)
),

final as (
    select
        person_id,
        task,
        day,
        abnormal,
        abnormal
            and abnormal_days_in_year >= confirm_days
            and abnormal_days_in_year >= $majority * tested_days_in_year
            and date_diff('day', day, last_abnormal_in_year) >= persist_days
            as confirmed
    from windowed
)

select * from final
