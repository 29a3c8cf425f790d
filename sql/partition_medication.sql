-- medication rows for the Parquet partitions of the archive (chronic.distributed.partitions): by the person's clinic
-- and the month of the row's date, so a reader can prune clinics and months it does not need.
with final as (
    select
        x.*,
        coalesce(p.clinic_id, 'unknown') as clinic,
        coalesce(strftime(x.start_date, '%Y-%m'), 'unknown') as month
    from medication as x
    join person as p using (person_id)
)

select * from final
