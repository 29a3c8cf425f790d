-- The day of one person's latest reading of any of a few measures up to the end of the as-of day (the person
-- page falls back to the year before it when the year before the as-of date has no reading).
-- Params: $person_id, $measures (list of measure names), $as_of (date).
with final as (
    select cast(max(effective_at) as date) as last_day
    from observation
    where person_id = $person_id
        and list_contains($measures, measure)
        and effective_at < cast($as_of::date + interval 1 day as timestamp)
)

select * from final
