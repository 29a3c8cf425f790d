-- The first few bad rows of `checked`, for the summary: line, field and reason only (never values).
with final as (
    select line, field, reason from checked where reason is not null order by line limit 5
)

select * from final
