-- What the archive holds, for deciding whether its Parquet partitions are current: the batches loaded and people.
with final as (
    select
        (select count(*) from ingest_batch) as batches,
        (select coalesce(max(batch_id), 0) from ingest_batch) as last_batch,
        (select count(*) from person) as people
)

select * from final
