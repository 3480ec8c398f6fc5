-- Recommendations take a category's products featured first, then newest (a product page's
-- "Same category", a shopper's viewed categories): with this index that is a short backward
-- range scan, where the category indexes of 001 leave a sort of the whole category.
CREATE INDEX products_active_category_featured ON products (category_id, is_featured, created_at, id) WHERE is_active;
