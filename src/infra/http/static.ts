// Static files the WhiteNoise way: GET/HEAD /static/* from the build scripts/build-static.mjs
// makes (content-hashed names, brotli and gzip made at build time), `app.staticUrl()` for every
// static URL the server emits (on the CDN when USE_CDN), and HTML pages rendered once at start-up
// from templates in public/ and held in memory (the API docs; the dashboard later).
//
// Served by hand rather than with @fastify/static: the build is a few MB, read into memory once
// per process, so a request is one Map lookup. No path ever reaches the file system (traversal
// cannot name a file outside the build), nothing is stat'ed per request, ETags are strong (a
// content hash; @fastify/send's are weak, from size and mtime), and the rendered pages go through
// the same sender.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { buildStatic, OUT_DIR, PUBLIC_DIR, readSources, sourceHash, type Manifest } from '../../../scripts/build-static.mjs';
import { acceptedEncoding, notModified } from '../cache/response-cache.ts';
import { appendVary } from './hooks.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** URL of a static file by its logical path (`docs/init.js`): `${CDN_URL}/static/…` when USE_CDN, else `/static/…`, hashed. */
    staticUrl(path: string): string;
    /** A template under public/ with each `{{static "path"}}` replaced by its staticUrl. */
    renderTemplate(template: string): string;
  }
  interface FastifyContextConfig {
    /** false: any origin may read the route's answers; the per-origin CORS headers are left off (cors.ts). */
    cors?: false;
  }
}

interface Variant {
  body: Buffer;
  etag: string;
}

/** Bytes ready to send, in each encoding made for them. */
export interface Asset {
  type: string;
  cacheControl: string;
  identity: Variant;
  br: Variant | undefined;
  gzip: Variant | undefined;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
// Unhashed names stay reachable (links from elsewhere, the licence text the bundle's comment
// names) but may change with any deploy, so they are kept only briefly.
const SHORT_LIVED = 'public, max-age=60';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
};

/** Strong ETags, one per encoding (their bytes differ), all from the content's hash. */
export function asset(type: string, cacheControl: string, identity: Buffer, br?: Buffer, gzip?: Buffer): Asset {
  const hash = createHash('sha256').update(identity).digest('base64url').slice(0, 22);
  return {
    type,
    cacheControl,
    identity: { body: identity, etag: `"${hash}"` },
    br: br && { body: br, etag: `"${hash}-br"` },
    gzip: gzip && { body: gzip, etag: `"${hash}-gz"` },
  };
}

/** An HTML page held in memory: compressed once, revalidated by ETag on every use (`no-cache`). */
export function htmlPage(html: string): Asset {
  const body = Buffer.from(html);
  const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
  const gzip = gzipSync(body, { level: 9 });
  return asset(TYPES['.html']!, 'no-cache', body, br.length < body.length ? br : undefined, gzip.length < body.length ? gzip : undefined);
}

/** Sends an asset in the best encoding the client accepts, or 304 when it holds that one already. */
export function sendAsset(request: FastifyRequest, reply: FastifyReply, a: Asset): FastifyReply {
  const encoding = acceptedEncoding(request.headers['accept-encoding'], a.br !== undefined, a.gzip !== undefined);
  const v = encoding === 'br' ? a.br! : encoding === 'gzip' ? a.gzip! : a.identity;
  reply.header('cache-control', a.cacheControl);
  reply.header('etag', v.etag);
  if (a.br || a.gzip) appendVary(reply, 'Accept-Encoding');
  if (notModified(request.headers['if-none-match'], v.etag)) return reply.code(304).send();
  if (encoding) reply.header('content-encoding', encoding);
  return reply.type(a.type).send(v.body);
}

const PLACEHOLDER = /\{\{\s*static\s+"([^"]+)"\s*\}\}/g;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Replaces each `{{static "path"}}` with `url(path)`, escaped for HTML. */
export function renderTemplate(html: string, url: (path: string) => string): string {
  return html.replace(PLACEHOLDER, (_, path: string) => url(path).replace(/[&<>"']/g, (c) => ESCAPES[c]!));
}

async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Where the build for the current sources is: dist/static when it was made from them, else a
 * temp dir named by their hash, built now if no process has built it yet (tests run from src, and
 * an edit under public/ must show without `npm run build`).
 */
export async function findBuild(log: FastifyBaseLogger, dirs: { publicDir?: string; builtDir?: string } = {}): Promise<{ dir: string; manifest: Manifest }> {
  const builtDir = dirs.builtDir ?? OUT_DIR;
  const sources = await readSources(dirs.publicDir ?? PUBLIC_DIR);
  const source = sourceHash(sources);
  const built = await readManifest(builtDir);
  if (built?.source === source) return { dir: builtDir, manifest: built };
  const dir = join(tmpdir(), `pasargad-static-${source.slice(0, 16)}`);
  log.warn({ dir }, `static files: ${built ? 'dist/static is older than its sources' : 'dist/static is missing'}, serving a build in a temp dir (npm run build makes dist/static)`);
  const made = await readManifest(dir);
  if (made?.source === source) return { dir, manifest: made };
  return { dir, manifest: await buildStatic({ outDir: dir, publicDir: dirs.publicDir, sources, replace: false }) };
}

async function optional(file: string): Promise<Buffer | undefined> {
  return readFile(file).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
}

/** Every file of a build, by hashed path (immutable) and by logical path (short-lived). */
export async function readBuild(dir: string, manifest: Manifest): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  await Promise.all(
    Object.entries(manifest.files).map(async ([logical, hashed]) => {
      const file = join(dir, hashed);
      const [body, br, gzip] = await Promise.all([readFile(file), optional(`${file}.br`), optional(`${file}.gz`)]);
      const hashedAsset = asset(TYPES[extname(logical).toLowerCase()] ?? 'application/octet-stream', IMMUTABLE, body, br, gzip);
      assets.set(hashed, hashedAsset);
      assets.set(logical, { ...hashedAsset, cacheControl: SHORT_LIVED });
    }),
  );
  return assets;
}

interface StaticFiles {
  manifest: Manifest;
  assets: Map<string, Asset>;
}

// Every app in the process (tests build many) shares one copy of the bytes.
let loaded: Promise<StaticFiles> | undefined;

function loadStaticFiles(log: FastifyBaseLogger): Promise<StaticFiles> {
  loaded ??= findBuild(log)
    .then(async ({ dir, manifest }) => ({ manifest, assets: await readBuild(dir, manifest) }))
    .catch((err: unknown) => {
      loaded = undefined;
      throw err;
    });
  return loaded;
}

export async function registerStatic(app: FastifyInstance): Promise<void> {
  const { manifest, assets } = await loadStaticFiles(app.log);
  const base = `${app.config.cdnUrl?.replace(/\/+$/, '') ?? ''}/static/`;
  app.decorate('staticUrl', (path: string) => {
    const hashed = manifest.files[path];
    if (hashed === undefined) throw new Error(`No static file "${path}": put it under public/ (or add it to VENDOR in scripts/build-static.mjs)`);
    return base + encodeURI(hashed);
  });
  app.decorate('renderTemplate', (template: string) => renderTemplate(readFileSync(join(PUBLIC_DIR, template), 'utf8'), app.staticUrl));

  // The static headers (CORP cross-origin, any origin may read) are set in hooks.ts, in place of
  // the per-origin CORS answer.
  app.get('/static/*', { config: { cors: false }, schema: { hide: true } }, (request, reply) => {
    const found = assets.get((request.params as { '*': string })['*']);
    if (!found) return reply.callNotFound();
    return sendAsset(request, reply, found);
  });
}
