-- Workers walk a job's items in `seq` order through the primary key; an index that includes
-- `state` only cost two index updates per item.
DROP INDEX IF EXISTS job_items_pending;
