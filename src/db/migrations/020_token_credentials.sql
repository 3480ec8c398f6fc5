-- Sessions end with the credentials they were made with (issue 20). A token whose sign-in is
-- older than tokens_valid_after is refused (src/modules/accounts/tokens.ts). The app sets it with
-- a password change or reset; this trigger also sets it for any other path that changes the
-- password or disables the account (SQL by hand, a future admin screen), so a session never
-- survives that, not even once the account is enabled again.
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;

CREATE FUNCTION users_end_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.tokens_valid_after IS NOT DISTINCT FROM OLD.tokens_valid_after THEN
    NEW.tokens_valid_after := clock_timestamp();
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER users_end_sessions BEFORE UPDATE OF password, is_active ON users
  FOR EACH ROW WHEN (OLD.password IS DISTINCT FROM NEW.password OR (OLD.is_active AND NOT NEW.is_active))
  EXECUTE FUNCTION users_end_sessions();
