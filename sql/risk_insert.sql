-- Store the rows of the registered frame `risk_new` (chronic.scoring.score_frame: one row per person x task of one
-- as-of date) in `risk`. Enum / categorical columns of the frame arrive as varchar.
insert into risk by name
select
    person_id,
    clinic_id,
    task::varchar as task,
    as_of,
    probability,
    band::varchar as band,
    percentile,
    rule_1::varchar as rule_1,
    rule_2::varchar as rule_2,
    rule_3::varchar as rule_3,
    completeness,
    model_name,
    model_version,
    scored_at
from risk_new
