-- The session that changed the password goes on (issue 20 review). It was carried past the change
-- by a mark in the `session` store written before the change, at a time taken before the change
-- committed: a sign-in with the old password checked meanwhile came out later than that time and
-- survived the change. The change now takes its time from the database clock as it locks the row
-- (see setPassword), and names the session it keeps in the same statement: nothing to write
-- elsewhere, no moment when the caller's own session is refused, nothing to expire.
ALTER TABLE users ADD COLUMN tokens_kept_sid text;

-- Any change that ends sessions without naming one to keep (SQL by hand, disabling) keeps none.
CREATE OR REPLACE FUNCTION users_end_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.tokens_valid_after IS NOT DISTINCT FROM OLD.tokens_valid_after THEN
    NEW.tokens_valid_after := clock_timestamp();
    NEW.tokens_kept_sid := NULL;
  END IF;
  RETURN NEW;
END $$;
