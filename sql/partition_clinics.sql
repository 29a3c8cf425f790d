-- The clinics of the archive, each a folder of the Parquet partitions (people without a clinic: 'unknown').
with final as (
    select distinct coalesce(clinic_id, 'unknown') as clinic
    from person
)

select * from final
order by clinic
