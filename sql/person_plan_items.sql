-- The items of one plan. Params: $plan_id.
with final as (
    select *
    from plan_item
    where plan_id = $plan_id
)

select * from final
order by item_id
