-- People for the Parquet partitions of the archive (chronic.distributed.partitions): one partition per clinic.
with final as (
    select
        p.*,
        coalesce(p.clinic_id, 'unknown') as clinic,
        'all' as month
    from person as p
)

select * from final
