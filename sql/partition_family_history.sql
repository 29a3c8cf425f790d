-- family_history rows for the Parquet partitions of the archive (chronic.distributed.partitions): by the person's clinic
-- (family history has no date: one month partition, 'all').
with final as (
    select
        x.*,
        coalesce(p.clinic_id, 'unknown') as clinic,
        'all' as month
    from family_history as x
    join person as p using (person_id)
)

select * from final
