-- A claim belongs to one run (token) and is renewed while its effect is under way (claimed_at):
-- another run of the same job may take it over only once it has not been renewed for a lock
-- timeout, so a run that is alive, only late, never has its send repeated beside it.
ALTER TABLE job_effects
  ADD COLUMN token varchar(64),
  ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();

-- The low-stock products each digest job named, so a rerun of that job (its worker died mid-send)
-- sends the digest it was making, not only the products that became low since.
ALTER TABLE low_stock_alerts ADD COLUMN job varchar(200);
