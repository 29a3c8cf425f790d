-- Keep the way back from an exported person key to the person in the archive (table export_key_map): adds the keys
-- of temp table `export_keys` (export_keys.sql) not yet mapped, so a rerun adds nothing.
insert into export_key_map (person_id, clinic_id, person_key)
with final as (
    select k.person_id, k.clinic_id, k.person_key
    from export_keys as k
    anti join export_key_map as m on m.clinic_id = k.clinic_id and m.person_key = k.person_key
)

select * from final
