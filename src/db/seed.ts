// Generates a realistic 3D-print catalog: categories, products (materials, print times, weights,
// prices that follow them, stock levels including low and sold-out), images, and reviews by
// generated users. Deterministic for a given `seed`; rows go in with one multi-row statement per
// table per batch (unnest), so 100,000 products take minutes on PGlite and PostgreSQL alike.
//
// Images are made on this machine (demo-images.ts), never fetched: a bounded pool of pictures,
// one per category and kind of product plus two views per category, stored through the media
// storage with their variants and shared by every product of that kind (and shown by each
// category that has no image of its own). AVIF variants come from the `make_image_variants` job
// when a queue is given. Without media storage (tests that never fetch images) each image is a
// tiny inline SVG: nothing to fetch either way.
import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Database, Db } from './database.ts';
import type { JobQueue } from '../infra/jobs/queue.ts';
import type { EventBus } from '../infra/events.ts';
import type { SharedImage } from '../modules/media/media.service.ts';
import { SHARED_PREFIX } from '../infra/media/storage.ts';
import { inlinePicture, makeDemoImages, pictureName, type DemoMedia, type DemoPicture } from './demo-images.ts';

export interface SeedOptions {
  products: number;
  /** PRNG seed: the same seed gives the same catalog. */
  seed?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Where the pictures go; `jobs` gets one AVIF job per picture that has no AVIF yet. */
  media?: DemoMedia & { jobs?: JobQueue; log?: Pick<Logger, 'info' | 'error'>; events?: Pick<EventBus, 'emit'> };
  /** Pictures made so far (they are made while the first rows go in). */
  onImages?: (done: number, total: number) => void;
  /**
   * Products first, images after: the seed returns without making pictures and
   * `addDemoImages` gives the new products theirs (a first start answers before they are made).
   */
  imagesLater?: boolean;
}

export interface SeedResult {
  products: number;
  images: number;
  reviews: number;
  users: number;
  categories: number;
}

interface CategorySpec {
  name: string;
  description: string;
  subjects: string[];
  nouns: string[];
  materials: string[];
  /** Price multiplier: jewellery and props sell above their material cost, parts below. */
  premium: number;
}

const CATEGORIES: CategorySpec[] = [
  { name: 'Miniatures', description: 'Tabletop and display miniatures in crisp resin and fine PLA.', subjects: ['Dragon', 'Knight', 'Wizard', 'Goblin', 'Orc Warrior', 'Elf Ranger', 'Dwarf Cleric', 'Beholder', 'Lich King', 'Owlbear', 'Paladin', 'Kraken'], nouns: ['Miniature', 'Figure', 'Bust', 'Statuette'], materials: ['Resin', 'Tough Resin', 'PLA'], premium: 1.3 },
  { name: 'Tabletop Terrain', description: 'Scenery, tiles and buildings for tabletop games.', subjects: ['Ruined Tower', 'Dungeon Wall', 'Forest Stump', 'Stone Bridge', 'Market Stall', 'Crypt Door', 'Barricade', 'Watchtower'], nouns: ['Terrain Piece', 'Scenery Set', 'Tile Set', 'Kit'], materials: ['PLA', 'PETG'], premium: 1.0 },
  { name: 'Home Decor', description: 'Vases, bowls and sculptures for the home.', subjects: ['Geometric', 'Voronoi', 'Low-Poly Fox', 'Spiral', 'Honeycomb', 'Wave', 'Faceted', 'Twisted'], nouns: ['Vase', 'Bowl', 'Sculpture', 'Candle Holder', 'Bookend'], materials: ['Silk PLA', 'PLA', 'Marble PLA', 'Wood-fill PLA'], premium: 1.1 },
  { name: 'Lamps & Lighting', description: 'Lamps, shades and lithophanes that glow.', subjects: ['Moon', 'Lithophane', 'Hexagon', 'Origami', 'Nautilus', 'Aurora', 'Crystal', 'Honeycomb'], nouns: ['Lamp', 'Lampshade', 'Night Light', 'Pendant Shade'], materials: ['PLA', 'PETG', 'Translucent PETG'], premium: 1.2 },
  { name: 'Planters', description: 'Pots and planters for succulents and house plants.', subjects: ['Succulent', 'Self-Watering', 'Geometric', 'Cat', 'Hanging', 'Terraced', 'Bonsai'], nouns: ['Planter', 'Pot', 'Plant Stand'], materials: ['PETG', 'PLA', 'TPU'], premium: 0.9 },
  { name: 'Desk Organizers', description: 'Stands, trays and holders that tidy a desk.', subjects: ['Modular', 'Cable', 'Pen', 'Headphone', 'Monitor', 'SD Card', 'Phone', 'Hex'], nouns: ['Organizer', 'Holder', 'Stand', 'Tray', 'Dock'], materials: ['PLA', 'PETG', 'ABS'], premium: 0.9 },
  { name: 'Mechanical Parts', description: 'Functional gears, mounts and brackets in engineering materials.', subjects: ['Planetary', 'Herringbone', 'Spur', 'Bevel', 'Timing Belt', 'Bearing', 'Hinge', 'Bracket'], nouns: ['Gear', 'Gearbox', 'Pulley', 'Mount', 'Spacer Set'], materials: ['Nylon', 'PETG', 'ABS', 'Carbon Fiber Nylon', 'ASA'], premium: 0.8 },
  { name: 'Cosplay & Props', description: 'Wearable props and replicas, ready to sand and paint.', subjects: ['Mandalorian', 'Sci-Fi', 'Elven', 'Steampunk', 'Samurai', 'Viking', 'Cyberpunk'], nouns: ['Helmet', 'Blaster', 'Gauntlet', 'Mask', 'Shield', 'Sword Hilt'], materials: ['PLA', 'PETG', 'ABS'], premium: 1.4 },
  { name: 'Toys & Games', description: 'Articulated toys, puzzles and games.', subjects: ['Articulated Dragon', 'Flexi Rex', 'Fidget', 'Marble Run', 'Puzzle Cube', 'Chess', 'Spinning Top', 'Octopus'], nouns: ['Toy', 'Set', 'Puzzle', 'Game'], materials: ['PLA', 'TPU', 'Silk PLA'], premium: 1.0 },
  { name: 'Jewelry', description: 'Light, bold jewellery printed in nylon and resin.', subjects: ['Filigree', 'Botanical', 'Geometric', 'Celtic Knot', 'Hexagon', 'Moon Phase'], nouns: ['Earrings', 'Pendant', 'Ring', 'Bracelet', 'Brooch'], materials: ['Resin', 'Nylon', 'Silk PLA'], premium: 1.8 },
  { name: 'Educational Models', description: 'Anatomy, science and engineering models for the classroom.', subjects: ['Human Skull', 'DNA Helix', 'Solar System', 'Heart Anatomy', 'Molecule', 'Topographic Map', 'Engine Cutaway'], nouns: ['Model', 'Kit', 'Replica'], materials: ['PLA', 'Resin'], premium: 1.1 },
  { name: 'Wall Art', description: 'Reliefs, maps and panels for the wall.', subjects: ['Mountain Range', 'World Map', 'Mandala', 'City Skyline', 'Wave', 'Tree of Life'], nouns: ['Wall Art', 'Relief', 'Panel', 'Plaque'], materials: ['PLA', 'Wood-fill PLA', 'Silk PLA'], premium: 1.2 },
];

const ADJECTIVES = ['Classic', 'Deluxe', 'Mini', 'Large', 'Hand-Painted', 'Articulated', 'Modular', 'Premium', 'Ornate', 'Minimalist', 'Heavy-Duty', 'Compact'];
const COLOURS = ['Red', 'Blue', 'Galaxy Black', 'Arctic White', 'Forest Green', 'Copper', 'Gold', 'Silver', 'Purple', 'Ocean Blue', 'Sunset Orange'];
const FEATURES = [
  'Printed to order and checked by hand before it ships.',
  'Supports removed and surfaces lightly sanded.',
  'Designed to print without visible seams on the front.',
  'Each layer fused for strength, so it survives daily use.',
  'Ships flat-packed where parts snap together without glue.',
  'Made in small batches on calibrated printers.',
];
const CARE = ['Keep out of direct sun to avoid warping.', 'Wipe clean with a dry cloth.', 'Hand wash only; not dishwasher safe.', 'Paint-ready with any acrylic primer.'];
const FIRST = ['Ava', 'Noah', 'Mia', 'Liam', 'Sara', 'Omid', 'Lena', 'Kai', 'Zara', 'Ravi', 'Nina', 'Arash', 'Ella', 'Hugo', 'Yara', 'Theo', 'Iris', 'Milo', 'Leila', 'Finn'];
const LAST = ['Smith', 'Rahimi', 'Garcia', 'Chen', 'Novak', 'Okafor', 'Larsen', 'Rossi', 'Tanaka', 'Moreau', 'Kaur', 'Silva', 'Weber', 'Haddad', ''];
const REVIEWS: Record<number, string[]> = {
  5: ['Absolutely love it. The detail is incredible for a print.', 'Perfect print quality, arrived quickly and well packed.', 'Exceeded expectations; buying another as a gift.'],
  4: ['Very nice print, a few faint layer lines but great overall.', 'Good quality and sturdy. Colour slightly darker than the photo.', 'Solid product, would buy again.'],
  3: ['Decent, but needed some cleanup of support marks.', 'It is okay. Smaller than I expected.', 'Average quality for the price.'],
  2: ['Visible stringing and one part was loose.', 'Took a long time to arrive and the finish was rough.'],
  1: ['Arrived broken. Support answered quickly, though.', 'Not as pictured at all.'],
};

/** mulberry32: small, fast, good enough for generated data, and reproducible. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  return { next, int, pick };
}

const money = (n: number) => (Math.round(n * 100) / 100).toFixed(2);

/** Every picture of the pool: a main one per category and kind, a close-up and a top view per category. */
export function demoPictures(): DemoPicture[] {
  return CATEGORIES.flatMap((c) => [
    ...c.nouns.map((kind) => ({ category: c.name, kind, view: 'main' as const })),
    { category: c.name, kind: '', view: 'detail' as const },
    { category: c.name, kind: '', view: 'top' as const },
  ]);
}

const VIEWS = ['main', 'detail', 'top'] as const;

/**
 * The pool, stored; variants other rows already have for the same files (AVIF from an earlier
 * seed's jobs) are taken over, so a second seed does not make them again.
 */
async function storedPool(database: Database, media: NonNullable<SeedOptions['media']>, onImages: SeedOptions['onImages'], signal?: AbortSignal): Promise<Map<string, SharedImage>> {
  const started = performance.now();
  const pool = await makeDemoImages(media, demoPictures(), onImages, signal);
  const keys = [...pool.values()].map((p) => p.key);
  const known = await sql<{ image: string; variants: SharedImage['variants'] }>`
    select distinct on (image) image, variants from product_images
     where image = any(${keys}::text[]) and variants @> '[{"format":"avif"}]'::jsonb
     order by image, id`.execute(database.db);
  const have = new Map(known.rows.map((r) => [r.image, r.variants]));
  for (const [name, p] of pool) {
    const variants = have.get(p.key);
    if (variants) pool.set(name, { ...p, variants });
  }
  media.log?.info({ pictures: pool.size, withAvif: have.size, ms: Math.round(performance.now() - started) }, 'demo images made');
  return pool;
}

export async function seedCatalog(database: Database, options: SeedOptions): Promise<SeedResult> {
  const { db } = database;
  const total = options.products;
  const batchSize = options.batchSize ?? 2000;
  const rnd = prng(options.seed ?? 42);
  const media = options.imagesLater ? undefined : options.media;
  // Made while the categories and reviewers go in (sharp works off the main thread).
  const pooled = media ? storedPool(database, media, options.onImages) : undefined;
  pooled?.catch(() => undefined);

  await db
    .insertInto('categories')
    .values(CATEGORIES.map((c) => ({ name: c.name, description: c.description })))
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const categoryRows = await db.selectFrom('categories').select(['id', 'name']).where('name', 'in', CATEGORIES.map((c) => c.name)).execute();
  const categoryId = new Map(categoryRows.map((r) => [r.name, r.id]));

  // Reviewers: generated accounts that cannot log in (the password is not a hash).
  const reviewerCount = Math.min(20_000, Math.max(50, Math.ceil(total / 20)));
  const users = Array.from({ length: reviewerCount }, (_, i) => ({ i, first: rnd.pick(FIRST), last: rnd.pick(LAST) }));
  for (let i = 0; i < users.length; i += batchSize) {
    const chunk = users.slice(i, i + batchSize);
    await sql`insert into users (email, username, first_name, last_name, password)
      select * from unnest(${chunk.map((u) => `reviewer${u.i}@example.com`)}::text[], ${chunk.map((u) => `reviewer${u.i}`)}::text[],
                           ${chunk.map((u) => u.first)}::text[], ${chunk.map((u) => u.last)}::text[], ${chunk.map(() => '!unusable')}::text[])
      on conflict do nothing`.execute(db);
  }
  const reviewerIds = (await db.selectFrom('users').select('id').where('email', 'like', 'reviewer%@example.com').orderBy('id').execute()).map((r) => r.id);

  const images = options.imagesLater ? undefined : new DemoImageRows(await pooled);
  if (images?.pool) await showOnCategories(db, images.pool);

  const { max } = await db.selectFrom('products').select(sql<number>`coalesce(max(id), 0)::int`.as('max')).executeTakeFirstOrThrow();
  const skuBase = max + 1;
  const now = Date.now();
  const result: SeedResult = { products: 0, images: 0, reviews: 0, users: reviewerIds.length, categories: categoryRows.length };

  for (let start = 0; start < total; start += batchSize) {
    const n = Math.min(batchSize, total - start);
    const p = {
      name: [] as string[], description: [] as string[], price: [] as string[], category: [] as number[], sku: [] as string[],
      stock: [] as number[], weight: [] as string[], dimensions: [] as string[], material: [] as string[], printTime: [] as number[],
      active: [] as boolean[], featured: [] as boolean[], threshold: [] as number[], created: [] as string[],
    };
    const specs: { category: string; kind: string }[] = [];
    for (let k = 0; k < n; k++) {
      const spec = rnd.pick(CATEGORIES);
      const subject = rnd.pick(spec.subjects);
      const noun = rnd.pick(spec.nouns);
      const material = rnd.pick(spec.materials);
      const lead = rnd.next() < 0.5 ? rnd.pick(ADJECTIVES) : rnd.pick(COLOURS);
      const printTime = rnd.int(20, 1800);
      const weight = Math.max(3, Math.round((printTime / 6) * (0.5 + rnd.next())));
      const threshold = rnd.next() < 0.8 ? 5 : 10;
      const roll = rnd.next();
      const stock = roll < 0.1 ? 0 : roll < 0.25 ? rnd.int(1, threshold) : rnd.int(threshold + 1, 250);
      const price = Math.floor((3 + (printTime / 60) * 1.6 + weight * 0.03) * spec.premium) + 0.99;
      const size = () => rnd.int(15, 300);
      specs.push({ category: spec.name, kind: noun });
      p.name.push(`${lead} ${subject} ${noun}`);
      p.description.push(
        `${subject} ${noun.toLowerCase()} 3D printed in ${material} at ${rnd.pick(['0.08', '0.12', '0.16', '0.2'])} mm layers. ${rnd.pick(FEATURES)} ${rnd.pick(CARE)}`,
      );
      p.price.push(money(price));
      p.category.push(categoryId.get(spec.name)!);
      p.sku.push(`PP-${String(skuBase + start + k).padStart(7, '0')}`);
      p.stock.push(stock);
      p.weight.push(money(weight));
      p.dimensions.push(`${size()} x ${size()} x ${size()} mm`);
      p.material.push(material);
      p.printTime.push(printTime);
      p.active.push(rnd.next() >= 0.03);
      p.featured.push(rnd.next() < 0.04);
      p.threshold.push(threshold);
      p.created.push(new Date(now - Math.floor(rnd.next() * 730 * 86_400_000)).toISOString());
    }

    await db.transaction().execute(async (trx) => {
      const inserted = await sql<{ id: number; sku: string; created_at: string }>`
        insert into products (name, description, price, category_id, sku, stock_quantity, weight, dimensions, material,
                              print_time, is_active, is_featured, low_stock_threshold, created_at, updated_at)
        select n, d, pr, c, s, st, w, dm, m, pt, a, f, th, cr, cr
          from unnest(${p.name}::text[], ${p.description}::text[], ${p.price}::numeric[], ${p.category}::bigint[], ${p.sku}::text[],
                      ${p.stock}::int[], ${p.weight}::numeric[], ${p.dimensions}::text[], ${p.material}::text[], ${p.printTime}::int[],
                      ${p.active}::bool[], ${p.featured}::bool[], ${p.threshold}::int[], ${p.created}::timestamptz[])
               as t(n, d, pr, c, s, st, w, dm, m, pt, a, f, th, cr)
        on conflict (sku) do nothing
        returning id, sku, created_at`.execute(trx);

      const img: DemoImageRow[] = [];
      const specBySku = new Map(p.sku.map((sku, i) => [sku, specs[i]!]));
      const rev = { product: [] as number[], user: [] as number[], rating: [] as number[], text: [] as string[], created: [] as string[] };
      const nameBySku = new Map(p.sku.map((sku, i) => [sku, p.name[i]!]));
      for (const row of inserted.rows) {
        const name = nameBySku.get(row.sku) ?? row.sku;
        const spec = specBySku.get(row.sku)!;
        img.push({ id: row.id, name, ...spec, count: rnd.int(1, 3) });
        // Most products have a few reviews, some none, a few many.
        const r = rnd.next();
        const count = r < 0.3 ? 0 : r < 0.9 ? rnd.int(1, 4) : rnd.int(5, 12);
        const created = Date.parse(row.created_at.replace(' ', 'T').replace(/\+00$/, 'Z'));
        const seen = new Set<number>();
        for (let k = 0; k < count && reviewerIds.length > 0; k++) {
          const user = rnd.pick(reviewerIds);
          if (seen.has(user)) continue;
          seen.add(user);
          const q = rnd.next();
          const rating = q < 0.45 ? 5 : q < 0.75 ? 4 : q < 0.88 ? 3 : q < 0.95 ? 2 : 1;
          rev.product.push(row.id);
          rev.user.push(user);
          rev.rating.push(rating);
          rev.text.push(rnd.pick(REVIEWS[rating]!));
          rev.created.push(new Date(Math.min(now, created + Math.floor(rnd.next() * 60 * 86_400_000))).toISOString());
        }
      }
      if (images) await images.insert(trx, img);
      if (rev.product.length) {
        await sql`insert into reviews (product_id, user_id, rating, review_text, created_at, updated_at)
          select pr, u, r, t, c, c from unnest(${rev.product}::bigint[], ${rev.user}::bigint[], ${rev.rating}::smallint[], ${rev.text}::text[], ${rev.created}::timestamptz[]) as x(pr, u, r, t, c)`.execute(trx);
      }
      result.products += inserted.rows.length;
      result.reviews += rev.product.length;
    });
    options.onProgress?.(start + n, total);
  }

  // PGlite has no autovacuum; fresh statistics keep the planner on the indexes after bulk loads.
  for (const table of ['users', 'categories', 'products', 'product_images', 'reviews']) await database.exec(`vacuum analyze ${table}`);

  result.images = images?.rows ?? 0;
  if (images?.pool && media?.jobs) await images.queueAvif(db, media);
  return result;
}

interface DemoImageRow {
  /** The product. */
  id: number;
  name: string;
  category: string;
  kind: string;
  /** Images: the main one, then a close-up, then a top view. */
  count: number;
}

/** Writes products' image rows: pictures of the pool, or inline SVGs without one. */
class DemoImageRows {
  /** A row showing each pooled picture that still lacks AVIF: its job gives them all AVIF. */
  private readonly avifVia = new Map<string, { kind: 'product' | 'category'; id: number }>();
  /** Image rows written so far. */
  rows = 0;

  constructor(readonly pool: Map<string, SharedImage> | undefined) {}

  /** Inserts the rows; returns each product's main image. */
  async insert(trx: Db, products: readonly DemoImageRow[]): Promise<{ id: number; product_id: number }[]> {
    const img = {
      product: [] as number[], url: [] as (string | null)[], file: [] as (string | null)[], width: [] as (number | null)[], height: [] as (number | null)[],
      variants: [] as string[], alt: [] as string[], main: [] as boolean[],
    };
    for (const row of products) {
      for (let k = 0; k < row.count; k++) {
        const picture: DemoPicture = { category: row.category, kind: k === 0 ? row.kind : '', view: VIEWS[k]! };
        const stored = this.pool?.get(pictureName(picture));
        img.product.push(row.id);
        img.url.push(stored ? null : inlinePicture(picture));
        img.file.push(stored?.key ?? null);
        img.width.push(stored?.width ?? null);
        img.height.push(stored?.height ?? null);
        img.variants.push(JSON.stringify(stored?.variants ?? []));
        img.alt.push(k === 0 ? row.name : `${row.name}, ${k === 1 ? 'layer detail' : 'top view'}`);
        img.main.push(k === 0);
      }
    }
    if (!img.product.length) return [];
    const rows = await sql<{ id: number; product_id: number; is_main: boolean; image: string | null; variants: { format: string }[] }>`
      insert into product_images (product_id, image_url, image, width, height, variants, alt_text, is_main)
      select pr, u, f, w, h, v::jsonb, a, m
        from unnest(${img.product}::bigint[], ${img.url}::text[], ${img.file}::text[], ${img.width}::int[], ${img.height}::int[],
                    ${img.variants}::text[], ${img.alt}::text[], ${img.main}::bool[]) as x(pr, u, f, w, h, v, a, m)
      returning id, product_id, is_main, image, variants`.execute(trx);
    for (const r of rows.rows) {
      if (r.image && !this.avifVia.has(r.image) && !r.variants.some((v) => v.format === 'avif')) this.avifVia.set(r.image, { kind: 'product', id: r.id });
    }
    this.rows += rows.rows.length;
    return rows.rows.filter((r) => r.is_main).map((r) => ({ id: r.id, product_id: r.product_id }));
  }

  /** One AVIF job per picture still without AVIF, on any one row that shows it. */
  async queueAvif(db: Db, media: NonNullable<SeedOptions['media']>): Promise<void> {
    if (!media.jobs) return;
    // Pictures no product shows (a kind this run did not pick) may still be a category's.
    for (const c of await db.selectFrom('categories').select(['id', 'image', 'image_variants']).where('image', 'like', `${SHARED_PREFIX}%`).execute()) {
      if (c.image && !this.avifVia.has(c.image) && !c.image_variants.some((v) => v.format === 'avif')) this.avifVia.set(c.image, { kind: 'category', id: c.id });
    }
    let queued = 0;
    for (const target of this.avifVia.values()) {
      await media.jobs.add('make_image_variants', target).then(
        () => queued++,
        (err: unknown) => media.log?.error({ err, ...target }, 'could not enqueue AVIF variants for a demo image'),
      );
    }
    media.log?.info({ jobs: queued }, 'AVIF variants of the demo images queued');
  }
}

/** A category without an image of its own shows its first kind's picture. */
async function showOnCategories(db: Db, pool: Map<string, SharedImage>): Promise<void> {
  for (const c of CATEGORIES) {
    const p = pool.get(pictureName({ category: c.name, kind: c.nouns[0]!, view: 'main' }))!;
    await db
      .updateTable('categories')
      .set({ image: p.key, image_width: p.width, image_height: p.height, image_variants: JSON.stringify(p.variants), updated_at: sql`now()` })
      .where('name', '=', c.name)
      .where('image', 'is', null)
      .execute();
  }
}

/** A whole number from the SKU: how many images a product gets when they are added later. */
function imageCount(sku: string): number {
  let h = 0;
  for (let i = 0; i < sku.length; i++) h = (h * 31 + sku.charCodeAt(i)) >>> 0;
  return 1 + (h % 3);
}

/**
 * After `seedCatalog(..., { imagesLater: true })`: makes the pool and gives every generated
 * product (SKU `PP-…`) that has no image its images, in batches, then queues AVIF. Stops between
 * batches when `signal` is aborted (the server is shutting down): the products left keep no
 * image, never a missing one.
 */
export async function addDemoImages(
  database: Database,
  media: NonNullable<SeedOptions['media']>,
  o: { signal?: AbortSignal; onImages?: SeedOptions['onImages']; batchSize?: number } = {},
): Promise<{ products: number; images: number }> {
  const { db } = database;
  const pool = await storedPool(database, media, o.onImages, o.signal);
  if (o.signal?.aborted) return { products: 0, images: 0 };
  const images = new DemoImageRows(pool);
  await showOnCategories(db, pool);
  for (const c of await db.selectFrom('categories').select('id').where('name', 'in', CATEGORIES.map((c) => c.name)).execute()) {
    await media.events?.emit('category.updated', { id: c.id, fields: ['image'] });
  }
  const specs = new Map(CATEGORIES.map((c) => [c.name, c]));
  const done = { products: 0, images: 0 };
  let after = 0;
  for (;;) {
    if (o.signal?.aborted) return done;
    const batch = await sql<{ id: number; sku: string; name: string; category: string }>`
      select p.id, p.sku, p.name, c.name as category from products p join categories c on c.id = p.category_id
       where p.id > ${after} and p.sku like 'PP-%' and not exists (select 1 from product_images i where i.product_id = p.id)
       order by p.id limit ${o.batchSize ?? 2000}`.execute(db);
    if (!batch.rows.length) break;
    after = batch.rows.at(-1)!.id;
    const rows = batch.rows.flatMap((r) => {
      const spec = specs.get(r.category);
      if (!spec) return [];
      const kind = spec.nouns.find((n) => r.name.endsWith(` ${n}`)) ?? spec.nouns[0]!;
      return [{ id: r.id, name: r.name, category: r.category, kind, count: imageCount(r.sku) }];
    });
    const before = images.rows;
    const mains = await db.transaction().execute((trx) => images.insert(trx, rows));
    // After commit: the lists and each product's page drop what they cached without images.
    for (const m of mains) await media.events?.emit('image.created', { productId: m.product_id, id: m.id });
    done.images += images.rows - before;
    done.products += rows.length;
  }
  await images.queueAvif(db, media);
  return done;
}
