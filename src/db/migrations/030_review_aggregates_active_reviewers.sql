-- A deactivated account's reviews are not listed (reviews.repository.ts, the product page), so
-- they do not count in review_count and average_rating either: a product page never says
-- "3 reviews" above two. The review triggers count only reviews by active accounts, and an
-- account that is disabled or enabled again takes its reviews out of, or puts them back into,
-- the aggregates of the products it reviewed, in the same transaction.

CREATE OR REPLACE FUNCTION reviews_rating_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE products p SET review_count = p.review_count + d.n, rating_total = p.rating_total + d.t
    FROM (SELECT r.product_id, count(*)::int AS n, sum(r.rating)::int AS t
            FROM new_rows r JOIN users u ON u.id = r.user_id AND u.is_active
           GROUP BY r.product_id) d
   WHERE p.id = d.product_id;
  RETURN NULL;
END $$;

-- A review whose account is gone was counted: its account is deleted in this very statement (the
-- cascade), and users_reviews_before_delete has put an inactive account's reviews back first.
CREATE OR REPLACE FUNCTION reviews_rating_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE products p SET review_count = p.review_count - d.n, rating_total = p.rating_total - d.t
    FROM (SELECT r.product_id, count(*)::int AS n, sum(r.rating)::int AS t
            FROM old_rows r
           WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = r.user_id AND NOT u.is_active)
           GROUP BY r.product_id) d
   WHERE p.id = d.product_id;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION reviews_rating_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE products p SET review_count = p.review_count + d.n, rating_total = p.rating_total + d.t
    FROM (SELECT product_id, sum(n)::int AS n, sum(t)::int AS t
            FROM (SELECT r.product_id, 1 AS n, r.rating AS t FROM new_rows r JOIN users u ON u.id = r.user_id AND u.is_active
                  UNION ALL
                  SELECT r.product_id, -1, -r.rating FROM old_rows r JOIN users u ON u.id = r.user_id AND u.is_active) x
           GROUP BY product_id) d
   WHERE p.id = d.product_id AND (d.n <> 0 OR d.t <> 0);
  RETURN NULL;
END $$;

CREATE FUNCTION users_reviews_active() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  sign int := CASE WHEN NEW.is_active THEN 1 ELSE -1 END;
BEGIN
  UPDATE products p SET review_count = p.review_count + sign * d.n, rating_total = p.rating_total + sign * d.t
    FROM (SELECT product_id, count(*)::int AS n, sum(rating)::int AS t FROM reviews WHERE user_id = NEW.id GROUP BY product_id) d
   WHERE p.id = d.product_id;
  RETURN NULL;
END $$;

CREATE TRIGGER users_reviews_active AFTER UPDATE OF is_active ON users
  FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active)
  EXECUTE FUNCTION users_reviews_active();

-- Deleting an inactive account: its reviews go by cascade and are subtracted like any other, so
-- they are added back just before.
CREATE FUNCTION users_reviews_before_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE products p SET review_count = p.review_count + d.n, rating_total = p.rating_total + d.t
    FROM (SELECT product_id, count(*)::int AS n, sum(rating)::int AS t FROM reviews WHERE user_id = OLD.id GROUP BY product_id) d
   WHERE p.id = d.product_id;
  RETURN OLD;
END $$;

CREATE TRIGGER users_reviews_before_delete BEFORE DELETE ON users
  FOR EACH ROW WHEN (NOT OLD.is_active)
  EXECUTE FUNCTION users_reviews_before_delete();

-- Accounts disabled before this migration: their reviews leave the aggregates now.
UPDATE products p SET review_count = p.review_count - d.n, rating_total = p.rating_total - d.t
  FROM (SELECT r.product_id, count(*)::int AS n, sum(r.rating)::int AS t
          FROM reviews r JOIN users u ON u.id = r.user_id AND NOT u.is_active
         GROUP BY r.product_id) d
 WHERE p.id = d.product_id;
