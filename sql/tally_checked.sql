-- Rows of `checked` by reason (null = loaded).
with final as (
    select reason, count(*) as n from checked group by reason
)

select * from final
