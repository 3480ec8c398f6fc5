-- Indexes the checkout, tracking and deletes need, and a lease token on jobs so a worker that
-- lost its lease can no longer renew or finish a job another worker has taken since.
CREATE INDEX checkouts_cart_open ON checkouts (cart_id) WHERE status = 'open';
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX orders_promotion ON orders (promotion_id) WHERE promotion_id IS NOT NULL;
CREATE INDEX promotion_usages_order ON promotion_usages (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX checkouts_user_open ON checkouts (user_id) WHERE status = 'open';
ALTER TABLE jobs ADD COLUMN lease varchar(40);
