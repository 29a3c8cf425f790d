-- Was this content already loaded? Same SHA-256 (an empty file only counts under its own path, since every empty
-- file has the same hash). Params: $sha256, $source_file.
with final as (
    select count(*) > 0 as seen
    from ingest_batch
    where content_sha256 = $sha256 and (status <> 'empty' or source_file = $source_file)
)

select * from final
