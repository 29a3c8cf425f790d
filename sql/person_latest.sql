-- The latest reading of every measure of one person up to the end of the as-of day: the mean of the readings of
-- the latest (UTC) day, as a visit's BP is the mean of its readings (docs/labels.md), with how many there were and
-- how many readings of the measure the year before. Params: $person_id, $as_of (date).
with readings as (
    select measure, unit, value, effective_at, cast(effective_at as date) as day
    from observation
    where person_id = $person_id
        and effective_at < cast($as_of::date + interval 1 day as timestamp)
),

last_day as (
    select measure, max(day) as day
    from readings
    group by measure
),

final as (
    select
        r.measure,
        any_value(r.unit) as unit,
        avg(r.value) as value,
        l.day,
        count(*) as n_day,
        (
            select count(*) from readings as y
            where y.measure = r.measure and y.day > $as_of::date - interval 365 day
        ) as n_year
    from readings as r
    join last_day as l on l.measure = r.measure and l.day = r.day
    group by r.measure, l.day
)

select * from final
order by measure
