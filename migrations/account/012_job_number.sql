-- Issue 17 (bot17): the number the owner sees for a job, unique across all of the owner's
-- accounts (given from `job_numbers` in the master database). NULL for jobs made before it:
-- those show their own id.
ALTER TABLE jobs ADD COLUMN number INTEGER;
