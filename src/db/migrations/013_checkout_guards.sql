-- Issue 20. A checkout remembers a fingerprint of the request that made it (body and caller), so
-- an Idempotency-Key reused for another request is refused instead of replaying the first one.
ALTER TABLE checkouts ADD COLUMN request_fingerprint varchar(64);
-- Open checkouts whose provider session was never saved (the process died, or the save failed):
-- released by the sweep long before they expire.
CREATE INDEX checkouts_unsaved ON checkouts (created_at) WHERE status = 'open' AND public_id IS NULL;
-- What the provider actually charged (payments.amount has it too), and a hold for staff when that
-- differs from the order's total: the order's own amounts always add up to what was bought.
ALTER TABLE orders
  ADD COLUMN amount_paid numeric(10, 2),
  ADD COLUMN on_hold boolean NOT NULL DEFAULT false;
CREATE INDEX orders_on_hold ON orders (created_at DESC) WHERE on_hold;
