-- The flags of one plan's follow-up review of a given day. Params: $plan_id, $review_date (date).
with final as (
    select flag, task, item_id, detail
    from flag
    where plan_id = $plan_id and as_of = $review_date::date
)

select * from final
order by (flag = 'overdue') desc, flag, task nulls first, item_id nulls first
