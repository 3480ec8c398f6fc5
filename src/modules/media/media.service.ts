// Staff image uploads for products and categories. An upload is checked and turned into WebP and
// JPEG variants in memory first; only a good image reaches storage, and its files are written
// before the row that names them, so no row ever points at a missing file. If the row cannot be
// written the files go again. AVIF variants follow in a job; removed files go in a job too.
//
// Each upload's files live in a folder of their own (`products/42/<upload id>/`), named by their
// content inside it: no two rows ever name the same file, so removing one image's files can never
// take another's, whatever runs at the same time on however many instances.
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { MediaVariant } from '../../db/schema.ts';
import { inTransaction, type Ctx } from '../../infra/http/context.ts';
import { AppError, fieldError } from '../../infra/http/errors.ts';
import { ImageRejected, inspect, mediaKey, render, withoutMetadata, type Rendition, type VariantFormat } from '../../infra/media/images.ts';
import { contentTypeOf, PRIVATE_PREFIX, SHARED_PREFIX, type MediaStorage } from '../../infra/media/storage.ts';
import type { JobQueue } from '../../infra/jobs/queue.ts';
import { toCategory, toProductImage } from '../catalog/catalog.mapper.ts';
import { findCategory } from '../catalog/catalog.repository.ts';
import type { Category, ProductImage } from '../catalog/catalog.schemas.ts';
import * as repo from './media.repository.ts';

export interface MediaDeps {
  storage: MediaStorage;
  jobs: JobQueue;
  log: FastifyBaseLogger;
  widths: readonly number[];
  maxPixels: number;
}

export function mediaDeps(app: FastifyInstance): MediaDeps {
  return { storage: app.media, jobs: app.jobs, log: app.log, widths: app.config.media.widths, maxPixels: app.config.media.maxPixels };
}

/** Made at upload; AVIF (seconds to encode at large sizes) in `make_image_variants`. */
const AT_ONCE: VariantFormat[] = ['webp', 'jpeg'];
const LATER: VariantFormat = 'avif';

/** A checked image and its files, not yet stored. */
interface Prepared {
  /** The public full-size image. */
  key: string;
  /** The upload as it came, when it differs from `key` (it carried metadata): never served. */
  original: string | null;
  width: number;
  height: number;
  variants: MediaVariant[];
  files: { key: string; bytes: Buffer }[];
}

/** The image field's error for a refused file (DRF's ImageField message for anything not an image). */
function rejected(err: unknown): never {
  if (err instanceof ImageRejected) throw fieldError('image', err.message);
  throw err;
}

async function prepare(deps: Pick<MediaDeps, 'widths' | 'maxPixels'>, owner: string, bytes: Buffer, dir = `${owner}/${randomBytes(6).toString('hex')}`): Promise<Prepared> {
  const info = await inspect(bytes, deps.maxPixels).catch(rejected);
  const renditions: Rendition[] = await render(bytes, info, deps.widths, AT_ONCE, deps.maxPixels).catch(rejected);
  const files: { key: string; bytes: Buffer }[] = [];
  let key: string;
  let original: string | null = null;
  if (info.hasMetadata) {
    // EXIF may say where a photo was taken: the public image is a copy without it.
    const clean = await withoutMetadata(bytes, info, deps.maxPixels).catch(rejected);
    key = mediaKey(dir, clean.bytes, clean.format);
    original = mediaKey(`${PRIVATE_PREFIX}${dir}`, bytes, info.format);
    files.push({ key, bytes: clean.bytes }, { key: original, bytes });
  } else {
    key = mediaKey(dir, bytes, info.format);
    files.push({ key, bytes });
  }
  const variants: MediaVariant[] = [];
  for (const r of renditions) {
    const variantKey = mediaKey(dir, r.bytes, r.format, r.width);
    files.push({ key: variantKey, bytes: r.bytes });
    variants.push({ width: r.width, height: r.height, format: r.format, key: variantKey });
  }
  return { key, original, width: info.width, height: info.height, variants, files };
}

/**
 * Writes every file or none: when one write fails, the others are removed again (all of them:
 * removing a file that is not there is no error, and a local folder goes once it is empty).
 */
async function store(deps: Pick<MediaDeps, 'storage'>, files: Prepared['files']): Promise<void> {
  const results = await Promise.allSettled(files.map((f) => deps.storage.put(f.key, f.bytes, contentTypeOf(f.key))));
  const failed = results.find((r) => r.status === 'rejected');
  if (!failed) return;
  await deps.storage.delete(files.map((f) => f.key)).catch(() => undefined);
  throw failed.reason;
}

function keysOf(image: { image: string | null; original?: string | null; variants: MediaVariant[] }): string[] {
  return [...(image.image ? [image.image] : []), ...(image.original ? [image.original] : []), ...image.variants.map((v) => v.key)];
}

async function enqueueSafely(deps: MediaDeps, run: () => Promise<unknown>, what: string): Promise<void> {
  // The write has committed; a queue that is down must not turn it into an error. The files stay
  // (orphans cost storage, never correctness) and AVIF is simply not offered for this image.
  await run().catch((err: unknown) => deps.log.error({ err }, `could not enqueue ${what}`));
}

export interface ImageUpload {
  bytes?: Buffer;
  imageUrl?: string;
  altText: string;
  isMain?: boolean;
}

export async function addProductImage(ctx: Ctx, deps: MediaDeps, productId: number, upload: ImageUpload): Promise<ProductImage> {
  if (!(await repo.productExists(ctx.database.db, productId))) throw new AppError('not_found');
  const prepared = upload.bytes ? await prepare(deps, `products/${productId}`, upload.bytes) : undefined;
  if (prepared) await store(deps, prepared.files);
  let image: Awaited<ReturnType<typeof repo.findImage>>;
  try {
    image = await inTransaction(ctx, async (trx, publish) => {
      if (!(await repo.lockProduct(trx, productId))) throw new AppError('not_found');
      // The first image of a product is its main one, as the storefront needs one to show.
      const main = upload.isMain === true || !(await repo.hasMainImage(trx, productId));
      if (main) await repo.clearMain(trx, productId);
      const id = await repo.insertImage(
        trx,
        {
          product_id: productId,
          image: prepared?.key ?? null,
          original: prepared?.original ?? null,
          image_url: prepared ? null : (upload.imageUrl ?? null),
          alt_text: upload.altText,
          width: prepared?.width ?? null,
          height: prepared?.height ?? null,
          variants: prepared?.variants ?? [],
        },
        main,
      );
      publish('image.created', { productId, id });
      return repo.findImage(trx, productId, id);
    });
  } catch (err) {
    if (prepared) await deps.storage.delete(prepared.files.map((f) => f.key)).catch(() => undefined);
    throw err;
  }
  if (prepared) await enqueueSafely(deps, () => deps.jobs.add('make_image_variants', { kind: 'product', id: image!.id }), 'AVIF variants');
  return toProductImage(image!, ctx.media);
}

export async function updateProductImage(ctx: Ctx, productId: number, imageId: number, changes: { altText?: string; isMain?: boolean }): Promise<ProductImage> {
  const updated = await inTransaction(ctx, async (trx, publish) => {
    const image = (await repo.lockProduct(trx, productId)) ? await repo.findImage(trx, productId, imageId) : undefined;
    if (!image) throw new AppError('not_found');
    // Unmarking the main image would leave the product without one, which the storefront needs.
    if (changes.isMain === false && image.is_main) throw fieldError('is_main', 'Mark another image as main instead: a product keeps one main image.');
    if (changes.isMain === true) await repo.clearMain(trx, productId);
    await repo.updateImage(trx, imageId, { ...(changes.altText !== undefined ? { alt_text: changes.altText } : {}), ...(changes.isMain ? { is_main: true } : {}) });
    publish('image.updated', { productId, id: imageId });
    return (await repo.findImage(trx, productId, imageId))!;
  });
  return toProductImage(updated, ctx.media);
}

export async function deleteProductImage(ctx: Ctx, deps: MediaDeps, productId: number, imageId: number): Promise<void> {
  const removed = await inTransaction(ctx, async (trx, publish) => {
    if (!(await repo.lockProduct(trx, productId))) throw new AppError('not_found');
    const row = await repo.deleteImage(trx, productId, imageId);
    if (!row) throw new AppError('not_found');
    if (row.is_main) await repo.promoteOldest(trx, productId);
    publish('image.deleted', { productId, id: imageId });
    return row;
  });
  const keys = keysOf(removed);
  if (keys.length) await enqueueSafely(deps, () => deps.jobs.add('delete_media_files', { keys }), 'file removal');
}

export async function setCategoryImage(ctx: Ctx, deps: MediaDeps, categoryId: number, bytes: Buffer | null): Promise<Category> {
  if (!(await repo.categoryImage(ctx.database.db, categoryId))) throw new AppError('not_found');
  const prepared = bytes ? await prepare(deps, `categories/${categoryId}`, bytes) : undefined;
  if (prepared) await store(deps, prepared.files);
  let previous: repo.CategoryImage;
  let category: Awaited<ReturnType<typeof findCategory>>;
  try {
    [previous, category] = await inTransaction(ctx, async (trx, publish) => {
      const before = await repo.lockCategory(trx, categoryId);
      if (!before) throw new AppError('not_found');
      await repo.setCategoryImage(trx, categoryId, prepared ? { key: prepared.key, original: prepared.original, width: prepared.width, height: prepared.height, variants: prepared.variants } : null);
      publish('category.updated', { id: categoryId, fields: ['image'] });
      return [before, await findCategory(trx, categoryId, false)] as const;
    });
  } catch (err) {
    if (prepared) await deps.storage.delete(prepared.files.map((f) => f.key)).catch(() => undefined);
    throw err;
  }
  const old = keysOf({ image: previous.image, original: previous.image_original, variants: previous.image_variants });
  if (old.length) await enqueueSafely(deps, () => deps.jobs.add('delete_media_files', { keys: old }), 'file removal');
  if (prepared) await enqueueSafely(deps, () => deps.jobs.add('make_image_variants', { kind: 'category', id: categoryId }), 'AVIF variants');
  return toCategory(category!, ctx.media);
}

/** A stored image many rows may show: its key, size and variants (AVIF follows in the job). */
export type SharedImage = Pick<Prepared, 'key' | 'width' | 'height' | 'variants'>;

/**
 * Stores an image in a folder of its own under SHARED_PREFIX (`dir`, fixed by the caller), with
 * its WebP and JPEG variants, as an upload would be. Files are named by their content, so storing
 * the same picture again writes the same keys. Rows that show it are written by the caller;
 * `make_image_variants` on any one of them gives all of them AVIF.
 */
export async function storeSharedImage(deps: Pick<MediaDeps, 'storage' | 'widths' | 'maxPixels'>, dir: string, bytes: Buffer): Promise<SharedImage> {
  if (!dir.startsWith(SHARED_PREFIX)) throw new Error(`shared images live under ${SHARED_PREFIX}: ${dir}`);
  const prepared = await prepare(deps, dir, bytes, dir);
  await store(deps, prepared.files);
  return { key: prepared.key, width: prepared.width, height: prepared.height, variants: prepared.variants };
}

// Jobs.

async function readAll(storage: MediaStorage, key: string): Promise<Buffer | undefined> {
  const object = await storage.get(key);
  if (!object) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The AVIF variants of one image. Safe to run twice: an image that has them (or is gone, or was
 * replaced meanwhile) is left alone, and files made for nothing are removed.
 */
export async function makeLaterVariants(ctx: Ctx, deps: MediaDeps, target: { kind: 'product' | 'category'; id: number }): Promise<void> {
  const db = ctx.database.db;
  const current = target.kind === 'product' ? await repo.imageRow(db, target.id) : await repo.categoryImage(db, target.id).then((c) => c && { image: c.image, variants: c.image_variants });
  if (!current?.image || current.variants.some((v) => v.format === LATER)) return;
  const bytes = await readAll(deps.storage, current.image);
  if (!bytes) return;
  const dir = current.image.slice(0, current.image.lastIndexOf('/'));
  const info = await inspect(bytes, deps.maxPixels);
  const renditions = await render(bytes, info, deps.widths, [LATER], deps.maxPixels);
  const files = renditions.map((r) => ({ key: mediaKey(dir, r.bytes, r.format, r.width), bytes: r.bytes, r }));
  await store(deps, files);
  const variants = files.map(({ key, r }) => ({ width: r.width, height: r.height, format: r.format, key }));
  if (current.image.startsWith(SHARED_PREFIX)) {
    // A shared image (the demo pool): every row that shows it gets the variants; the files stay
    // even when none needed them (another row may be about to).
    const changed = await repo.addSharedVariants(db, current.image, LATER, variants);
    for (const i of changed.images) await ctx.events.emit('image.updated', { productId: i.product_id, id: i.id, variants: true });
    for (const id of changed.categories) await ctx.events.emit('category.updated', { id, fields: ['image'] });
    return;
  }
  if (target.kind === 'product') {
    const productId = await repo.addVariants(db, target.id, current.image, LATER, variants);
    if (productId === undefined) return deps.storage.delete(files.map((f) => f.key));
    await ctx.events.emit('image.updated', { productId, id: target.id, variants: true });
  } else {
    if (!(await repo.addCategoryVariants(db, target.id, current.image, LATER, variants))) return deps.storage.delete(files.map((f) => f.key));
    await ctx.events.emit('category.updated', { id: target.id, fields: ['image'] });
  }
}

/**
 * Removes the files of removed images. Keys are never shared between rows (a folder per upload),
 * so the check that no row names them only guards against a mistake.
 */
export async function deleteFiles(ctx: Ctx, deps: MediaDeps, keys: readonly string[]): Promise<void> {
  if (!keys.length) return;
  await deps.storage.delete(await repo.unreferenced(ctx.database.db, keys));
}
