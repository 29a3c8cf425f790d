-- One row per file loaded, written in the file's own transaction. Params: see the columns.
insert into ingest_batch (
    batch_id, source_file, content_sha256, format, status, rows_read, rows_loaded, rows_quarantined, rows_skipped,
    skipped_types, started_at, finished_at
)
values (
    $batch_id, $source_file, $sha256, $format, $status, $rows_read, $rows_loaded, $rows_quarantined, $rows_skipped,
    $skipped_types, $started_at, $finished_at
)
