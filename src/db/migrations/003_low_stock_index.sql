-- The staff low-stock report (0 < stock <= the product's own threshold, lowest stock first)
-- compares two columns, which no plain index serves; a partial index holds exactly its rows.
CREATE INDEX products_low_stock ON products (stock_quantity, id)
  WHERE is_active AND stock_quantity > 0 AND stock_quantity <= low_stock_threshold;
