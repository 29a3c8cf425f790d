-- Daily means of a few measures of one person over a window (the person page's vitals trend).
-- Params: $person_id, $measures (list of measure names), $since (date, inclusive), $until (date, inclusive).
with final as (
    select
        measure,
        cast(effective_at as date) as day,
        avg(value) as value,
        count(*) as n
    from observation
    where person_id = $person_id
        and list_contains($measures, measure)
        and effective_at >= cast($since::date as timestamp)
        and effective_at < cast($until::date + interval 1 day as timestamp)
    group by measure, cast(effective_at as date)
)

select * from final
order by measure, day
