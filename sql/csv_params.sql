-- The layout of the device CSV being loaded, for stage_device_csv.sql (a view cannot take parameters).
-- Params: $last_unterminated, $n_fields, $i_<column> for the seven columns.
create or replace temp table csv_params as
select
    $last_unterminated::bigint as last_unterminated,
    $n_fields::int as n_fields,
    $i_person_id::int as i_person_id,
    $i_clinic_id::int as i_clinic_id,
    $i_device_id::int as i_device_id,
    $i_measured_at::int as i_measured_at,
    $i_code::int as i_code,
    $i_value::int as i_value,
    $i_unit::int as i_unit
