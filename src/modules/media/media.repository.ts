// SQL of the media module: product image rows and category images, and which stored files are
// still referenced (a file named by its content can belong to two images of the same product).
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';
import type { MediaVariant } from '../../db/schema.ts';
import type { ImageJson } from '../catalog/catalog.repository.ts';
import { SHARED_PREFIX } from '../../infra/media/storage.ts';

export interface NewImage {
  product_id: number;
  image: string | null;
  original: string | null;
  image_url: string | null;
  alt_text: string;
  width: number | null;
  height: number | null;
  variants: MediaVariant[];
}

const IMAGE_COLUMNS = ['id', 'image', 'image_url', 'alt_text', 'is_main', 'created_at', 'product_id as product', 'variants'] as const;

export async function findImage(db: Db, productId: number, imageId: number): Promise<ImageJson | undefined> {
  return db.selectFrom('product_images').select(IMAGE_COLUMNS).where('id', '=', imageId).where('product_id', '=', productId).executeTakeFirst();
}

export async function imageRow(db: Db, imageId: number): Promise<{ id: number; product_id: number; image: string | null; variants: MediaVariant[] } | undefined> {
  return db.selectFrom('product_images').select(['id', 'product_id', 'image', 'variants']).where('id', '=', imageId).executeTakeFirst();
}

/** Locks the product row (inactive ones too: staff manage those) so main-image changes queue up. */
export async function lockProduct(trx: Db, id: number): Promise<boolean> {
  return Boolean(await trx.selectFrom('products').select('id').where('id', '=', id).forNoKeyUpdate().executeTakeFirst());
}

export async function productExists(db: Db, id: number): Promise<boolean> {
  return Boolean(await db.selectFrom('products').select('id').where('id', '=', id).executeTakeFirst());
}

export async function hasMainImage(trx: Db, productId: number): Promise<boolean> {
  return Boolean(await trx.selectFrom('product_images').select('id').where('product_id', '=', productId).where('is_main', '=', true).executeTakeFirst());
}

export async function clearMain(trx: Db, productId: number): Promise<void> {
  await trx.updateTable('product_images').set({ is_main: false }).where('product_id', '=', productId).where('is_main', '=', true).execute();
}

export async function insertImage(trx: Db, row: NewImage, isMain: boolean): Promise<number> {
  const { id } = await trx
    .insertInto('product_images')
    .values({ ...row, variants: JSON.stringify(row.variants), is_main: isMain })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}

export async function updateImage(trx: Db, imageId: number, changes: { alt_text?: string; is_main?: boolean }): Promise<void> {
  await trx.updateTable('product_images').set(changes).where('id', '=', imageId).execute();
}

export async function deleteImage(trx: Db, productId: number, imageId: number): Promise<{ image: string | null; original: string | null; variants: MediaVariant[]; is_main: boolean } | undefined> {
  return trx.deleteFrom('product_images').where('id', '=', imageId).where('product_id', '=', productId).returning(['image', 'original', 'variants', 'is_main']).executeTakeFirst();
}

/** After the main image is deleted the oldest remaining one takes its place, so a product keeps a picture. */
export async function promoteOldest(trx: Db, productId: number): Promise<void> {
  await sql`update product_images set is_main = true
             where id = (select id from product_images where product_id = ${productId} order by id limit 1)`.execute(trx);
}

/** Adds variants (the AVIF job's) unless the image is gone, changed, or has them already. */
export async function addVariants(db: Db, imageId: number, original: string, format: string, variants: MediaVariant[]): Promise<number | undefined> {
  const row = await db
    .updateTable('product_images')
    .set({ variants: sql`variants || ${JSON.stringify(variants)}::jsonb` })
    .where('id', '=', imageId)
    .where('image', '=', original)
    .where(sql<boolean>`not variants @> ${JSON.stringify([{ format }])}::jsonb`)
    .returning('product_id')
    .executeTakeFirst();
  return row?.product_id;
}

export interface CategoryImage {
  image: string | null;
  image_original: string | null;
  image_variants: MediaVariant[];
}

export async function lockCategory(trx: Db, id: number): Promise<CategoryImage | undefined> {
  return trx.selectFrom('categories').select(['image', 'image_original', 'image_variants']).where('id', '=', id).forNoKeyUpdate().executeTakeFirst();
}

export async function categoryImage(db: Db, id: number): Promise<CategoryImage | undefined> {
  return db.selectFrom('categories').select(['image', 'image_original', 'image_variants']).where('id', '=', id).executeTakeFirst();
}

export async function setCategoryImage(trx: Db, id: number, image: { key: string; original: string | null; width: number; height: number; variants: MediaVariant[] } | null): Promise<void> {
  await trx
    .updateTable('categories')
    .set({
      image: image?.key ?? null,
      image_original: image?.original ?? null,
      image_width: image?.width ?? null,
      image_height: image?.height ?? null,
      image_variants: JSON.stringify(image?.variants ?? []),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .execute();
}

export async function addCategoryVariants(db: Db, id: number, original: string, format: string, variants: MediaVariant[]): Promise<boolean> {
  const row = await db
    .updateTable('categories')
    .set({ image_variants: sql`image_variants || ${JSON.stringify(variants)}::jsonb` })
    .where('id', '=', id)
    .where('image', '=', original)
    .where(sql<boolean>`not image_variants @> ${JSON.stringify([{ format }])}::jsonb`)
    .returning('id')
    .executeTakeFirst();
  return Boolean(row);
}

/**
 * Adds variants to every product image and category that shows a shared image (the demo pool's),
 * unless they have them already. Returns who changed, for cache invalidation.
 */
export async function addSharedVariants(db: Db, original: string, format: string, variants: MediaVariant[]): Promise<{ images: { id: number; product_id: number }[]; categories: number[] }> {
  const missing = sql<boolean>`not variants @> ${JSON.stringify([{ format }])}::jsonb`;
  const images = await db
    .updateTable('product_images')
    .set({ variants: sql`variants || ${JSON.stringify(variants)}::jsonb` })
    .where('image', '=', original)
    .where(missing)
    .returning(['id', 'product_id'])
    .execute();
  const categories = await db
    .updateTable('categories')
    .set({ image_variants: sql`image_variants || ${JSON.stringify(variants)}::jsonb` })
    .where('image', '=', original)
    .where(sql<boolean>`not image_variants @> ${JSON.stringify([{ format }])}::jsonb`)
    .returning('id')
    .execute();
  return { images, categories: categories.map((c) => c.id) };
}

/**
 * The keys no row refers to any more (never a shared key: those stay). Keys are grouped by owner (`products/42/…`,
 * `categories/7/…`, and the same under `private/`) so each check reads one product's images or
 * one category through an index.
 */
export async function unreferenced(db: Db, keys: readonly string[]): Promise<string[]> {
  const owners = new Map<string, string[]>();
  for (const key of keys) {
    if (key.startsWith(SHARED_PREFIX)) continue;
    const owner = key.replace(/^private\//, '').split('/').slice(0, 2).join('/');
    owners.set(owner, [...(owners.get(owner) ?? []), key]);
  }
  const out: string[] = [];
  for (const [owner, group] of owners) {
    const [kind, raw] = owner.split('/');
    const id = Number(raw);
    const used = new Set<string>();
    if (Number.isSafeInteger(id) && kind === 'products') {
      for (const r of await db.selectFrom('product_images').select(['image', 'original', 'variants']).where('product_id', '=', id).execute()) {
        if (r.image) used.add(r.image);
        if (r.original) used.add(r.original);
        for (const v of r.variants) used.add(v.key);
      }
    } else if (Number.isSafeInteger(id) && kind === 'categories') {
      const r = await categoryImage(db, id);
      if (r?.image) used.add(r.image);
      if (r?.image_original) used.add(r.image_original);
      for (const v of r?.image_variants ?? []) used.add(v.key);
    }
    out.push(...group.filter((k) => !used.has(k)));
  }
  return out;
}
