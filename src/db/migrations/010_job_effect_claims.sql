-- An effect is claimed before it is made and marked done after it. A claim left unfinished by a
-- run of the same job (its worker died mid-send: the queue hands a job on only once its holder's
-- lock or lease has run out) is taken over by the job's next run, which makes the effect again with
-- the same reference (an email's Message-ID), so a message half sent is not lost. Rows from before
-- this migration were made by the old at-most-once claim and count as done.
ALTER TABLE job_effects
  ADD COLUMN job varchar(200),
  ADD COLUMN ref varchar(64),
  ADD COLUMN done boolean NOT NULL DEFAULT true;
ALTER TABLE job_effects ALTER COLUMN done SET DEFAULT false;
