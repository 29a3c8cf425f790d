-- A new ingest batch id.
select nextval('ingest_batch_seq') as batch_id
