-- One person's readings from a plan's start to the end of the as-of day, in the observation shape that
-- chronic.care.followup.target_progress reads: the observations plus the lifestyle answers a target can be on
-- (exercise_min_week = days/week x min/day answered together; smoker = 1 current, 0 former / never).
-- Params: $person_id, $start (date), $as_of (date).
with window_lifestyle as (
    select item, value_text, value_num, effective_at
    from lifestyle
    where person_id = $person_id
        and effective_at >= cast($start::date as timestamp)
        and effective_at < cast($as_of::date + interval 1 day as timestamp)
),

exercise as (
    select
        'exercise_min_week' as measure,
        max(value_num) filter (where item = 'exercise_days_week')
            * max(value_num) filter (where item = 'exercise_min_day') as value,
        effective_at
    from window_lifestyle
    where item in ('exercise_days_week', 'exercise_min_day')
    group by effective_at
),

smoking as (
    select
        'smoker' as measure,
        case value_text when 'current' then 1.0 when 'former' then 0.0 when 'never' then 0.0 end as value,
        effective_at
    from window_lifestyle
    where item = 'smoking'
),

observations as (
    select measure, value, effective_at
    from observation
    where person_id = $person_id
        and effective_at >= cast($start::date as timestamp)
        and effective_at < cast($as_of::date + interval 1 day as timestamp)
),

final as (
    select $person_id as person_id, measure, value, effective_at from observations
    union all
    select $person_id, measure, value, effective_at from exercise where value is not null and value >= 0
    union all
    select $person_id, measure, value, effective_at from smoking where value is not null
)

select * from final
order by measure, effective_at
