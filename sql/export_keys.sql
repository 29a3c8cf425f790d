-- Person keys of a clinic export (chronic.export.pseudonym, docs/exports.md): the people of the chosen clinics that
-- have a risk score at the as-of date, each with HMAC-SHA256(export key, clinic_id NUL person_id) as 32 hex chars.
-- The HMAC is spelt out over DuckDB's sha256 so that keys are computed column-wise: with K the key padded to the
-- 64-byte block, $inner_pad = K xor 0x36.., $outer_pad = K xor 0x5c.. (RFC 2104), both computed once in Python.
-- The clinic is the person's clinic in `person` (the one authority; people without a clinic are not exported).
-- Params: $as_of (date), $clinics (varchar[]), $inner_pad (blob), $outer_pad (blob), $key_chars (int).
with scored as (
    select distinct person_id
    from risk
    where as_of = $as_of::date
),

people as (
    select p.person_id, p.clinic_id
    from person as p
    semi join scored as s on s.person_id = p.person_id
    where p.clinic_id is not null and list_contains($clinics::varchar[], p.clinic_id)
),

final as (
    select
        person_id,
        clinic_id,
        left(
            sha256($outer_pad::blob || unhex(sha256(
                $inner_pad::blob || encode(clinic_id) || unhex('00') || encode(person_id)
            ))),
            $key_chars::int
        ) as person_key
    from people
)

select * from final
