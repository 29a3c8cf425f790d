-- Family history of one person. Params: $person_id.
with final as (
    select distinct relationship, degree, icd10
    from family_history
    where person_id = $person_id
)

select * from final
order by degree nulls last, relationship, icd10
