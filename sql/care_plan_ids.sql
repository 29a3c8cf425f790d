-- Stable plan ids for `plan_keys` (person_id, start_date): the first 16 hex digits of
-- sha256('<person_id>|<YYYY-MM-DD>'), the same digest Python's hashlib.sha256 gives (chronic.care.plans).
select substr(sha256(person_id || '|' || strftime(start_date, '%Y-%m-%d')), 1, 16) as plan_id
from plan_keys
