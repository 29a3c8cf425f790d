-- One person's header row for the person page (chronic.care.person_view). Params: $person_id.
with final as (
    select person_id, clinic_id, sex, birth_date, province, north, urban
    from person
    where person_id = $person_id
)

select * from final
