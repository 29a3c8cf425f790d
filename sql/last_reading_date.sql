-- The day of the latest reading in the archive: the default as-of date of training and scoring.
with final as (
    select cast(max(effective_at) as date) as last_day
    from observation
)
select * from final
