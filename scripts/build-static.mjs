// Builds the static files the WhiteNoise way: every asset under public/ and the few vendor files
// the pages need, each written as `name.<hash12>.ext` (sha256 of its bytes) with brotli and gzip
// siblings made once here, and `manifest.json` mapping each logical path to its hashed one.
// HTML files under public/ are page templates, not assets: the server renders them at start-up
// (their `{{static "…"}}` placeholders become CDN or local URLs), so they are not copied.
//
// `npm run build` runs it after tsc; src/infra/http/static.ts imports it to rebuild into a temp
// dir when dist/static is missing or older than its sources (tests run from src).
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

export const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));
export const OUT_DIR = fileURLToPath(new URL('../dist/static/', import.meta.url));

// Bumped when the output changes for the same sources, so older builds count as stale.
const FORMAT = 1;

// Logical path → file in node_modules. Swagger UI's base layout needs only the bundle and its
// styles (no standalone preset: its top bar loads arbitrary spec URLs); the licence texts are
// what the bundle's header comment points to. uPlot draws the dashboard's charts (its IIFE build
// defines the one global `uPlot`; the page loads no modules).
const VENDOR = {
  'swagger-ui/swagger-ui-bundle.js': 'swagger-ui-dist/swagger-ui-bundle.js',
  'swagger-ui/swagger-ui-bundle.js.LICENSE.txt': 'swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt',
  'swagger-ui/swagger-ui.css': 'swagger-ui-dist/swagger-ui.css',
  'swagger-ui/index.css': 'swagger-ui-dist/index.css',
  'swagger-ui/favicon-32x32.png': 'swagger-ui-dist/favicon-32x32.png',
  'swagger-ui/favicon-16x16.png': 'swagger-ui-dist/favicon-16x16.png',
  'uplot/uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'uplot/uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

const COMPRESSIBLE = new Set(['.js', '.mjs', '.css', '.html', '.svg', '.json', '.map', '.txt']);

async function walk(dir) {
  const entries = await readdir(dir, { withFileTypes: true }).catch((err) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
  const files = await Promise.all(entries.map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [])));
  return files.flat();
}

// Source maps are not shipped, so a pointer to one would only earn a 404 in the browser's tools.
function prepare(path, data) {
  if (!/\.(js|css)$/.test(path)) return data;
  return Buffer.from(data.toString('utf8').replace(/\n?\/[/*]# sourceMappingURL=[^\n]*?(\*\/)?\s*$/, '\n'));
}

/** The assets to build, as `{ path, data }` sorted by logical path: public/ (minus templates) and VENDOR. */
export async function readSources(publicDir = PUBLIC_DIR) {
  const require = createRequire(import.meta.url);
  const own = (await walk(publicDir))
    .filter((file) => extname(file) !== '.html')
    .map((file) => ({ path: relative(publicDir, file).split(sep).join('/'), file }));
  const vendor = Object.entries(VENDOR).map(([path, spec]) => ({ path, file: require.resolve(spec) }));
  const all = [...own, ...vendor].sort((a, b) => (a.path < b.path ? -1 : 1));
  return Promise.all(all.map(async ({ path, file }) => ({ path, data: await readFile(file) })));
}

/** One hash of every source and the build format: manifest.json records it, so a stale build shows. */
export function sourceHash(sources) {
  const h = createHash('sha256').update(`format ${FORMAT}\0`);
  for (const s of sources) h.update(`${s.path}\0${s.data.length}\0`).update(s.data);
  return h.digest('hex');
}

export function hashedName(path, data) {
  const hash = createHash('sha256').update(data).digest('hex').slice(0, 12);
  const ext = extname(path);
  return `${path.slice(0, path.length - ext.length)}.${hash}${ext}`;
}

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);

// A variant is kept only when it saves at least 5% (WhiteNoise's rule): a smaller gain does not
// pay for the decoding.
async function variants(path, data) {
  if (!COMPRESSIBLE.has(extname(path))) return [];
  const [br, gz] = await Promise.all([
    brotli(data, { params: { [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY, [constants.BROTLI_PARAM_SIZE_HINT]: data.length } }),
    gzipped(data, { level: 9 }),
  ]);
  return [['.br', br], ['.gz', gz]].filter(([, bytes]) => bytes.length < data.length * 0.95);
}

/**
 * Writes `outDir` and returns its manifest: `{ source, files: { logical: hashed } }`. The files go
 * to a sibling directory first, renamed into place at the end, so a reader never sees half a
 * build. `replace: false` keeps an existing `outDir` (another process made the same build first).
 */
export async function buildStatic({ outDir = OUT_DIR, publicDir = PUBLIC_DIR, sources, replace = true } = {}) {
  sources ??= await readSources(publicDir);
  const target = outDir.replace(/[/\\]+$/, '');
  const temp = `${target}.tmp-${process.pid}-${Date.now()}`;
  const files = {};
  await Promise.all(
    sources.map(async ({ path, data }) => {
      const bytes = prepare(path, data);
      const hashed = hashedName(path, bytes);
      files[path] = hashed;
      const file = join(temp, ...hashed.split('/'));
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, bytes);
      for (const [suffix, compressed] of await variants(path, bytes)) await writeFile(file + suffix, compressed);
    }),
  );
  const manifest = { source: sourceHash(sources), files: Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) };
  await writeFile(join(temp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  if (replace) await rm(target, { recursive: true, force: true });
  try {
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
  }
  return manifest;
}

// `node scripts/build-static.mjs [outDir]`: skipped when outDir was built from these sources
// (`npm start` builds first, and maximum-quality brotli takes seconds).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = Date.now();
  const outDir = process.argv[2] ?? OUT_DIR;
  const where = relative(process.cwd(), outDir) || '.';
  const sources = await readSources();
  const current = await readFile(join(outDir, 'manifest.json'), 'utf8').then(JSON.parse, () => undefined);
  if (current?.source === sourceHash(sources)) console.log(`static: ${where} is up to date`);
  else {
    const manifest = await buildStatic({ outDir, sources });
    console.log(`static: ${Object.keys(manifest.files).length} files → ${where} in ${Date.now() - started} ms`);
  }
}
