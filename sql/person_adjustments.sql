-- The plan changes proposed at one plan's follow-up review of a given day. Params: $plan_id, $review_date (date).
with final as (
    select action, item_id, task, new_level, new_review_days, detail
    from plan_adjustment
    where plan_id = $plan_id and as_of = $review_date::date
)

select * from final
order by action, item_id nulls first, task nulls first
