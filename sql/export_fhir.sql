-- risk_assessment.ndjson of one clinic: one FHIR R4 RiskAssessment per person (per model, should a person's tasks
-- have been scored by different model versions) as JSON text, built column-wise with to_json of structs (one per
-- prediction, one per resource). FHIR forbids null elements, and a struct has every member, so each object goes
-- through json_merge_patch('{}', ...): by RFC 7396 a null member of the patch means "absent", so the members left
-- null (a rationale without rules, a mitigation without a plan, the coding of a task chronic does not know) are
-- dropped and everything else is kept in order. Merge patch copies arrays as they are, hence the predictions are
-- cleaned one by one before they are listed.
-- Inputs: registered `export_risk_rows` (the clinic's risk.csv rows), `export_tasks(task, task_order, label, icd10)`,
-- temp table `export_plan`.
-- Params: $as_of (date), $horizon_end (date), $clinic (varchar), $icd10_system, $band_system, $model_system (varchar).
with outcomes as (
    -- one outcome per task, built once: the task's ICD-10 categories and its label
    select
        task,
        task_order,
        {
            'coding': list_transform(icd10, lambda c: {'system': $icd10_system::varchar, 'code': c}),
            'text': label
        } as outcome
    from export_tasks
),

predictions as (
    select
        r.person_key,
        r.model_name,
        r.model_version,
        coalesce(o.task_order, 1000) as task_order,
        r.task,
        json_merge_patch('{}', to_json({
            'outcome': coalesce(o.outcome, {'coding': null, 'text': r.task}),
            'probabilityDecimal': r.probability,
            'qualitativeRisk': {
                'coding': [{'system': $band_system::varchar, 'code': r.band}],
                'text': replace(r.band, '_', ' ')
            },
            'whenPeriod': {'start': $as_of::date, 'end': $horizon_end::date},
            'rationale': nullif(concat_ws('; ', r.rule_1, r.rule_2, r.rule_3), '')
        })) as prediction  -- JSON, not a struct: DuckDB aggregates lists of nested structs slowly
    from export_risk_rows as r
    left join outcomes as o on o.task = r.task
),

assessments as (
    select
        person_key,
        model_name,
        model_version,
        list(prediction order by task_order, task) as predictions
    from predictions
    group by person_key, model_name, model_version
),

final as (
    select
        a.person_key,
        a.model_name,
        a.model_version,
        json_merge_patch('{}', to_json({
            'resourceType': 'RiskAssessment',
            -- stable id: the same export gives the same id, and ids never repeat across people, dates or models
            'id': left(sha256(concat_ws('|', a.person_key, $as_of::date, a.model_name, a.model_version)), 32),
            'status': 'final',
            'method': {
                'coding': [{'system': $model_system::varchar, 'version': a.model_version, 'code': a.model_name}],
                'text': a.model_name || ' ' || a.model_version
            },
            'subject': {'reference': 'Patient/' || a.person_key},
            'occurrenceDateTime': $as_of::date,
            'prediction': a.predictions,
            'mitigation': nullif(p.summary, '')
        }))::varchar as resource
    from assessments as a
    left join export_plan as p on p.person_key = a.person_key and p.clinic_id = $clinic
)

select * from final
