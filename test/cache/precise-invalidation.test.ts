// Precise invalidation (issue 22): every filter and ordering of every cached catalog route,
// against every kind of write a selling shop makes, on both databases and, on PostgreSQL + Redis,
// across two instances:
//
//   changed bytes ⇒ dropped: after a write's 200, every instance answers each page exactly as an
//   uncached server on the same database does (no stale read);
//   unchanged bytes ⇒ kept: a page whose answer did not change is still a cache hit, unless the
//   page could have changed by what it is: it shows the product written and the write moved
//   something its card shows, or its query reads a property the write moved.
//
// That oracle is written here from the API's parameters (what `ordering=price` or `in_stock=true`
// read), not from the server's tags, so a filter or field the server forgets to tag fails the first
// half and an over-broad tag fails the second.
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../src/db/database.ts';
import { getJson, testApp } from '../helpers/app.ts';
import { signedIn, type TestUser } from '../helpers/auth.ts';
import { forEachBackend } from '../helpers/db.ts';
import * as f from '../helpers/factories.ts';
import { uniquePrefix } from '../helpers/redis.ts';
import { shopper } from '../helpers/shopper.ts';
import { heardFromOther } from '../helpers/two-instances.ts';

/** Product properties a page can depend on (the test's own vocabulary). */
type Dim = 'member' | 'category' | 'featured' | 'price' | 'in_stock' | 'low_stock' | 'stock' | 'material' | 'weight' | 'print_time' | 'rating' | 'reviews' | 'text' | 'name' | 'image';
/** What a product card shows (the contract's ProductCard). */
const CARD: ReadonlySet<Dim> = new Set(['member', 'category', 'featured', 'price', 'in_stock', 'rating', 'reviews', 'name', 'image']);

interface Page {
  url: string;
  /** list: cards and a count; detail: one product's page or reviews; categories: product counts; cards: shows cards it does not list by query. */
  kind: 'list' | 'detail' | 'categories' | 'cards';
  dims: Dim[];
  product?: number;
}

interface Write {
  name: string;
  run: () => Promise<void>;
  /** Products written, and the categories whose product counts it may move. */
  products: number[];
  categories?: number[];
  dims: Dim[];
  /** A category rename: every page may show it. */
  everything?: boolean;
  /** Another category change: the pages that show whole categories (their own, products' pages, facets) may drop. */
  category?: boolean;
}

interface Catalog {
  a: number;
  b: number;
  ids: number[];
  /** Named products the writes use. */
  p: Record<'plenty' | 'last' | 'low' | 'none' | 'edit' | 'move' | 'gone', number>;
}

const FACETS: Dim[] = ['member', 'category', 'material', 'price', 'weight'];

function pagesOf(c: Catalog): Page[] {
  const pages: Page[] = [];
  const list = (query: string, dims: Dim[]) => pages.push({ url: `/api/products/?page_size=3${query}`, kind: 'list', dims: ['member', ...dims] });
  const filters: [string, Dim[]][] = [
    ['', []],
    [`&category=${c.a}`, []],
    ['&is_featured=true', ['featured']],
    ['&min_price=12', ['price']],
    ['&max_price=30', ['price']],
    ['&in_stock=true', ['in_stock']],
    ['&search=dragon', ['text']],
    [`&category=${c.b}&in_stock=true`, ['in_stock']],
  ];
  for (const [q, dims] of filters) {
    list(q, dims);
    list(`${q}&page=2`, dims);
  }
  const orderings: [string, Dim[]][] = [
    ['price', ['price']],
    ['-price', ['price']],
    ['created_at', []],
    ['-created_at', []],
    ['name', ['name']],
    ['-name', ['name']],
    ['average_rating', ['rating']],
    ['-average_rating', ['rating']],
  ];
  for (const [o, dims] of orderings) {
    list(`&ordering=${o}`, dims);
    list(`&ordering=${o}&page=2`, dims);
    list(`&category=${c.a}&ordering=${o}`, dims);
  }
  pages.push({ url: '/api/products/featured/?page_size=3', kind: 'list', dims: ['member', 'featured'] });
  pages.push({ url: '/api/products/categories/', kind: 'categories', dims: ['member'] });
  pages.push({ url: `/api/products/categories/${c.a}/`, kind: 'categories', dims: ['member'] });
  for (const q of ['dragon', 'lamp', 'dragn']) pages.push({ url: `/api/products/search/?q=${q}`, kind: 'list', dims: ['member', 'text'] });
  const advanced: [string, Dim[]][] = [
    ['', []],
    ['&q=dragon', ['text']],
    [`&category=${c.a}`, []],
    ['&material=PETG', []],
    ['&min_price=12', []],
    ['&max_price=30', []],
    ['&stock=in_stock', ['in_stock']],
    ['&stock=low_stock', ['low_stock']],
    ['&stock=out_of_stock', ['in_stock']],
    ['&min_weight=150', []],
    ['&max_weight=250', []],
    ['&max_print_time=100', ['print_time']],
    ['&min_rating=3', ['rating']],
    ['&featured=true', ['featured']],
    ['&sort=price_asc', []],
    ['&sort=price_desc&page=2', []],
    ['&sort=name_asc', ['name']],
    ['&sort=name_desc', ['name']],
    ['&sort=newest', []],
    ['&sort=oldest&page=2', []],
    ['&sort=rating', ['rating']],
    ['&sort=popularity', ['reviews']],
    ['&q=lamp&sort=relevance', ['text']],
  ];
  for (const [q, dims] of advanced) pages.push({ url: `/api/products/advanced-search/?per_page=3${q}`, kind: 'list', dims: [...FACETS, ...dims] });
  for (const id of c.ids) pages.push({ url: `/api/products/${id}/`, kind: 'detail', dims: [], product: id });
  for (const id of [c.p.plenty, c.p.edit]) pages.push({ url: `/api/products/${id}/reviews/`, kind: 'detail', dims: [], product: id });
  // Promotions show their products' cards and their categories in full.
  pages.push({ url: '/api/promotions/active/', kind: 'cards', dims: ['category'] });
  return pages;
}

/** The product ids a page's body shows (cards of a list, the page's own product). */
function idsIn(body: unknown): number[] {
  const b = body as { results?: { id: number }[]; id?: number };
  if (Array.isArray(b?.results)) return b.results.map((r) => r.id);
  return typeof b?.id === 'number' ? [b.id] : [];
}

/** Whether the write may drop the page though its bytes stayed the same (see the file's header). */
function mayDrop(page: Page, w: Write, before: unknown, after: unknown): boolean {
  if (w.everything) return true;
  if (w.category) return page.kind === 'categories' || page.kind === 'detail' || page.dims.includes('category');
  const showsCard = w.dims.some((d) => CARD.has(d));
  switch (page.kind) {
    case 'detail': {
      if (w.products.includes(page.product!)) return true;
      const category = (before as { category?: { id: number } }).category?.id;
      return w.dims.includes('member') && category !== undefined && (w.categories ?? []).includes(category);
    }
    case 'categories':
      return w.dims.includes('member');
    case 'cards':
      return showsCard;
    case 'list': {
      const held = [...idsIn(before), ...idsIn(after)];
      if (showsCard && w.products.some((id) => held.includes(id))) return true;
      return page.dims.some((d) => w.dims.includes(d));
    }
  }
}

async function seed(db: Database): Promise<Catalog> {
  const d = db.db;
  const a = (await f.category(d, { name: 'Figures' })).id;
  const b = (await f.category(d, { name: 'Homeware' })).id;
  const at = (i: number) => new Date(Date.UTC(2026, 0, 1 + i)).toISOString();
  const rows: [keyof Catalog['p'] | undefined, f.ProductOverrides][] = [
    ['plenty', { name: 'Dragon Miniature', price: '12.00', category_id: a, stock_quantity: 20, material: 'PLA', weight: '120.00', print_time: 90, is_featured: true }],
    ['last', { name: 'Dragon Bookend', price: '24.00', category_id: a, stock_quantity: 1, material: 'PETG', weight: '300.00', print_time: 200 }],
    ['low', { name: 'Knight Figure', price: '8.50', category_id: a, stock_quantity: 8, material: 'Resin', weight: '60.00', print_time: 45 }],
    ['none', { name: 'Wizard Tower', price: '31.00', category_id: a, stock_quantity: 0, material: 'PLA', weight: '220.00', print_time: 300 }],
    ['edit', { name: 'Spiral Vase', price: '15.00', category_id: b, stock_quantity: 12, material: 'PETG', weight: '180.00', print_time: 120, is_featured: true }],
    ['move', { name: 'Desk Lamp', price: '29.00', category_id: b, stock_quantity: 6, material: 'PLA', weight: '260.00', print_time: 240 }],
    ['gone', { name: 'Cable Clip', price: '3.00', category_id: b, stock_quantity: 50, material: 'PLA', weight: '10.00', print_time: 15 }],
    [undefined, { name: 'Gear Set', price: '9.00', category_id: b, stock_quantity: 3, material: 'PETG', weight: '40.00', print_time: 60 }],
    [undefined, { name: 'Planter', price: '18.00', category_id: b, stock_quantity: 0, material: 'PLA', weight: '150.00', print_time: 150 }],
    [undefined, { name: 'Dragon Egg', price: '6.00', category_id: a, stock_quantity: 4, material: 'Resin', weight: '50.00', print_time: 80, is_featured: true }],
  ];
  const p = {} as Catalog['p'];
  const ids: number[] = [];
  for (const [i, [key, o]] of rows.entries()) {
    const row = await f.product(d, { description: `${o.name} printed to order`, low_stock_threshold: 5, created_at: at(i), ...o });
    ids.push(row.id);
    if (key) p[key] = row.id;
  }
  const reviewer = await f.user(d, { first_name: 'Rae', last_name: 'Viewer' });
  for (const [id, rating] of [[p.plenty, 5], [p.last, 3], [p.edit, 4], [ids[9]!, 2]] as const) await f.review(d, id, reviewer.id, rating);
  await d.updateTable('products').set({ review_count: 1 }).where('id', 'in', [p.plenty, p.last, p.edit, ids[9]!]).execute();
  return { a, b, ids, p };
}

/** Every kind of write a selling shop makes, in order (each builds on the catalog the last left). */
function writesOf(app: FastifyInstance, c: Catalog, staff: TestUser, customer: TestUser): Write[] {
  const call = async (method: string, url: string, payload?: object) => {
    const r = await getJson(app, url, { method: method as 'GET', headers: staff.headers, ...(payload ? { payload } : {}) });
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as { id: number };
  };
  const patch = (id: number, body: object) => call('PATCH', `/api/products/${id}/`, body);
  let order = 0;
  const buy = async (id: number, quantity: number, pay: boolean) => {
    const s = shopper(app);
    const added = await s.add(id, quantity);
    assert.ok(added.status === 200 || added.status === 201, JSON.stringify(added.body));
    const started = await s.checkout({ email: 'shopper@example.com', shipping_address: { name: 'Ada', address: '1 Road', city: 'London', postal_code: 'SW1', country: 'GB' } });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    if (!pay) return;
    assert.equal((await s.pay(started.body.checkout_session_id, 'outcome=paid&email=shopper%40example.com')).statusCode, 303);
    order = (await s.verify(started.body.checkout_session_id)).body.order_id;
  };
  const { p } = c;
  return [
    { name: 'a checkout holds 1 of 20 (still in stock)', run: () => buy(p.plenty, 1, false), products: [p.plenty], dims: ['stock'] },
    { name: 'staff set stock 8 → 3 (now low)', run: async () => void (await patch(p.low, { stock_quantity: 3 })), products: [p.low], dims: ['stock', 'low_stock'] },
    { name: 'a paid order takes the last one (sold out)', run: () => buy(p.last, 1, true), products: [p.last], dims: ['stock', 'in_stock', 'low_stock'] },
    { name: 'staff cancel that order (back in stock)', run: async () => void (await call('PATCH', `/api/orders/${order}/status/`, { status: 'cancelled' })), products: [p.last], dims: ['stock', 'in_stock', 'low_stock'] },
    { name: 'staff restock a sold-out product 0 → 7', run: async () => void (await patch(p.none, { stock_quantity: 7 })), products: [p.none], dims: ['stock', 'in_stock'] },
    { name: 'staff change a price', run: async () => void (await patch(p.edit, { price: '2.00' })), products: [p.edit], dims: ['price'] },
    { name: 'staff rename a product', run: async () => void (await patch(p.edit, { name: 'Dragon Vase' })), products: [p.edit], dims: ['name', 'text'] },
    { name: 'staff change a description', run: async () => void (await patch(p.move, { description: 'A lamp with a dragon shade' })), products: [p.move], dims: ['text'] },
    { name: 'staff feature a product', run: async () => void (await patch(p.move, { is_featured: true })), products: [p.move], dims: ['featured'] },
    { name: 'staff change a material', run: async () => void (await patch(p.move, { material: 'Resin' })), products: [p.move], dims: ['material', 'text'] },
    { name: 'staff change a weight', run: async () => void (await patch(p.move, { weight: '140.00' })), products: [p.move], dims: ['weight'] },
    { name: 'staff change a print time', run: async () => void (await patch(p.move, { print_time: 95 })), products: [p.move], dims: ['print_time'] },
    { name: 'staff move a product to another category', run: async () => void (await patch(p.move, { category: c.a })), products: [p.move], categories: [c.a, c.b], dims: ['member', 'category', 'text'] },
    { name: 'staff deactivate a product', run: async () => void (await call('DELETE', `/api/products/${p.gone}/`)), products: [p.gone], categories: [c.b], dims: ['member'] },
    {
      name: 'staff create a product',
      run: async () => void (await call('POST', '/api/products/', { name: 'Dragon Keychain', price: '4.00', category: c.b, sku: `KEY-${Date.now()}`, stock_quantity: 30, material: 'PLA', weight: '8.00', print_time: 20 })),
      products: [],
      categories: [c.b],
      dims: ['member'],
    },
    {
      name: 'a customer reviews a product',
      run: async () => {
        const r = await getJson(app, `/api/products/${p.low}/reviews/`, { method: 'POST', headers: customer.headers, payload: { rating: 5, review_text: 'Perfect print' } });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      },
      products: [p.low],
      dims: ['rating', 'reviews'],
    },
    { name: 'staff add a main image', run: async () => void (await call('POST', `/api/products/${p.low}/images/`, { image_url: 'https://img.test/knight.jpg', is_main: true, alt_text: 'Knight' })), products: [p.low], dims: ['image'] },
    {
      // What the AVIF job does: new variants on an image, told as `image.updated` with `variants`.
      name: 'the AVIF job adds variants to a main image',
      run: async () => {
        const image = await app.database.db
          .updateTable('product_images')
          .set({ variants: JSON.stringify([{ width: 200, height: 200, format: 'avif', key: `products/${p.low}/knight-200.avif` }]) })
          .where('product_id', '=', p.low)
          .where('is_main', '=', true)
          .returning('id')
          .executeTakeFirstOrThrow();
        await app.events.emit('image.updated', { productId: p.low, id: image.id, variants: true });
      },
      products: [p.low],
      dims: [],
    },
    { name: 'staff change a category’s description', run: async () => void (await call('PATCH', `/api/products/categories/${c.a}/`, { description: 'Figures and busts' })), products: [], dims: [], category: true },
    { name: 'staff rename a category', run: async () => void (await call('PATCH', `/api/products/categories/${c.b}/`, { name: 'Home & Desk' })), products: [], dims: [], everything: true },
  ];
}

interface Instances {
  /** The caching instances (one embedded; two on PostgreSQL + Redis), writes go through the first. */
  cached: FastifyInstance[];
  /** The same database with the cache off: the truth each answer is compared with. */
  truth: FastifyInstance;
}

/** The answer as compared: the body, after the status unless it is 200 (a page past the last is a 404, never cached). */
async function get(app: FastifyInstance, url: string) {
  const r = await getJson(app, url);
  assert.ok(r.status === 200 || r.status === 404, `${url}: ${r.status} ${JSON.stringify(r.body)}`);
  return { body: (r.status === 200 ? '' : `${r.status} `) + JSON.stringify(r.body), cache: r.headers['x-cache'], ok: r.status === 200 };
}

/** Asks until the instance answers from its cache (an entry naming products unknown to it yet is stored on the second miss). */
async function fill(app: FastifyInstance, url: string): Promise<string> {
  for (let i = 0; i < 3; i++) {
    const r = await get(app, url);
    if (r.cache === 'HIT' || !r.ok) return r.body;
  }
  assert.fail(`${url} is not cached after 3 requests`);
}

const parsed = (answer: string) => JSON.parse(answer.replace(/^\d{3} /, '')) as unknown;

async function run(t: TestContext, at: Instances, c: Catalog, writes: Write[]): Promise<void> {
  const pages = pagesOf(c);
  const stale: string[] = [];
  const overDropped: string[] = [];
  let kept = 0;
  let unchanged = 0;
  let changed = 0;
  let truth = new Map<string, string>();
  for (const p of pages) truth.set(p.url, (await get(at.truth, p.url)).body);
  for (const w of writes) {
    for (const p of pages) {
      for (const app of at.cached) {
        const held = await fill(app, p.url);
        assert.equal(held, truth.get(p.url), `before “${w.name}”: ${p.url} cached as the truth`);
      }
    }
    const heard = at.cached.slice(1).map((b) => heardFromOther(b, 'api', 'tags'));
    await w.run();
    await Promise.all(heard);
    const next = new Map<string, string>();
    for (const p of pages) {
      const now = (await get(at.truth, p.url)).body;
      next.set(p.url, now);
      const was = truth.get(p.url)!;
      const same = now === was;
      if (same) unchanged++;
      else changed++;
      for (const [i, app] of at.cached.entries()) {
        const r = await get(app, p.url);
        if (r.body !== now) stale.push(`after “${w.name}”, instance ${i + 1} served ${p.url} stale (${r.cache}):\n  served ${r.body.slice(0, 300)}\n  truth  ${now.slice(0, 300)}`);
        else if (same && r.cache === 'HIT') kept++;
        else if (same && r.ok && !mayDrop(p, w, parsed(was), parsed(now))) overDropped.push(`after “${w.name}”, instance ${i + 1} dropped ${p.url}, whose answer did not change`);
      }
    }
    assert.deepEqual(stale, [], 'changed bytes ⇒ dropped: no stale answer after a write');
    // The write must be a probe of each dimension it moves: among the pages whose query reads that
    // dimension, one changed though it did not show the product before (or its count changed),
    // so a missing tag for it would have been caught above as a stale answer.
    for (const d of w.dims.filter((x) => pages.some((p) => p.kind === 'list' && p.dims.includes(x)))) {
      const probed = pages.some((p) => {
        const [was, now] = [truth.get(p.url)!, next.get(p.url)!];
        if (p.kind !== 'list' || !p.dims.includes(d) || was === now) return false;
        const held = idsIn(parsed(was));
        return w.products.some((id) => !held.includes(id)) || (parsed(was) as { count?: number }).count !== (parsed(now) as { count?: number }).count;
      });
      assert.ok(probed, `“${w.name}” moved no product into or out of a page that reads ${d} without showing it: it tests nothing of that dimension's tags`);
    }
    truth = next;
  }
  const instances = at.cached.length;
  t.diagnostic(`${pages.length} pages × ${writes.length} writes × ${instances} instance(s): ${changed} answers changed (each dropped), ${unchanged} unchanged, ${kept / instances} of them kept per instance`);
  assert.deepEqual(overDropped, [], 'unchanged bytes ⇒ kept, unless the page shows the product written or reads what the write moved');
}

forEachBackend('precise invalidation: every cached page against every kind of write', ({ backend, db }) => {
  const prefix = uniquePrefix();
  // A slow Redis command puts a store to rest and drops its copies (CACHE_TIMEOUT_MS, 100 ms by
  // default): right for an outage, noise for this test of precision on a busy machine.
  const env: Record<string, string> = backend === 'postgres' ? { REDIS_URL: 'redis://127.0.0.1:6379', CACHE_TIMEOUT_MS: '5000' } : {};
  const apps: FastifyInstance[] = [];
  before(async () => {
    const cached = await testApp(db(), env, { cacheKeyPrefix: prefix });
    apps.push(cached);
    if (backend === 'postgres') apps.push(await testApp(db(), env, { cacheKeyPrefix: prefix }));
    apps.push(await testApp(db(), { CACHE_ENABLED: 'false' }));
  });
  after(async () => {
    await Promise.all(apps.map((a) => a.close()));
  });

  test(backend === 'postgres' ? 'two instances sharing PostgreSQL and Redis' : 'embedded', { timeout: 240_000 }, async (t) => {
    const c = await seed(db());
    const staff = await signedIn(apps[0]!, db(), { staff: true });
    const customer = await signedIn(apps[0]!, db(), { first_name: 'Cass', last_name: 'Tomer' });
    const at = { cached: apps.slice(0, -1), truth: apps.at(-1)! };
    await run(t, at, c, writesOf(apps[0]!, c, staff, customer));
  });
});
