-- The latest answer to each lifestyle item of one person up to the end of the as-of day.
-- Params: $person_id, $as_of (date).
with final as (
    select
        item,
        arg_max(value_text, effective_at) as value_text,
        arg_max(value_num, effective_at) as value_num,
        max(effective_at) as effective_at
    from lifestyle
    where person_id = $person_id
        and (effective_at is null or effective_at < cast($as_of::date + interval 1 day as timestamp))
    group by item
)

select * from final
order by item
