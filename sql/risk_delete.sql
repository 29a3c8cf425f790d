-- Remove the risk rows of one as-of date before a scoring run writes that date again (chronic.scoring.write_risk,
-- in the same transaction as sql/risk_insert.sql): a rerun replaces the date instead of adding copies.
-- Params: $as_of (date).
delete from risk
where as_of = $as_of::date
