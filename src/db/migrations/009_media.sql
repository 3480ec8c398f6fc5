-- Media: each uploaded image keeps its size and its variants (width, height, format, storage
-- key), so responses can list them for srcset without touching storage. `original` is the upload
-- as it came, kept out of public reach when it carried metadata (the public `image` is then a
-- copy without it).
ALTER TABLE product_images
  ADD COLUMN original text,
  ADD COLUMN width integer,
  ADD COLUMN height integer,
  ADD COLUMN variants jsonb NOT NULL DEFAULT '[]';

ALTER TABLE categories
  ADD COLUMN image_original text,
  ADD COLUMN image_width integer,
  ADD COLUMN image_height integer,
  ADD COLUMN image_variants jsonb NOT NULL DEFAULT '[]';
