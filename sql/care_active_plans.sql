-- Plans in force at an as-of date: active, started before it.
with final as (
    select *
    from plan
    where status = 'active' and start_date < $as_of
)

select * from final
