// Cache warming: the hot catalog answers are made before a shopper asks for them, by running the
// real routes (app.inject), so a warmed entry is exactly what a request would have stored. Warmed:
// categories, featured, the first product page, the first page of every category, and the
// entries used most recently; at start-up, a moment after an invalidation, and on a schedule;
// for PUBLIC_URL's origin (default http://localhost:PORT).
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.ts';
import { internalHeaders } from '../limits/plugin.ts';

export interface WarmResult {
  requests: number;
  ms: number;
}

/** `prefix:origin/path?query` → [origin, path?query]. */
function splitKey(key: string): [string, string] | undefined {
  const m = /^[^:]+:(https?:\/\/[^/]+)(\/.*)$/.exec(key);
  return m ? [m[1]!, m[2]!] : undefined;
}

export class CacheWarmer {
  private pending: NodeJS.Timeout | undefined;
  private running: Promise<WarmResult> | undefined;
  private stopListening: (() => void) | undefined;
  private readonly defaultOrigin: string;

  constructor(
    private readonly app: FastifyInstance,
    private readonly config: Config,
  ) {
    this.defaultOrigin = config.publicUrl ?? `http://localhost:${config.port}`;
  }

  /**
   * The URLs worth having warm, for the one origin clients use (PUBLIC_URL): a Host header is
   * the caller's to choose, so other origins are never warmed.
   */
  private async targets(): Promise<Set<string>> {
    const categories = await this.app.database.read((db) => db.selectFrom('categories').select('id').where('is_active', '=', true).orderBy('id').limit(200).execute());
    const urls = new Set(['/api/products/categories/', '/api/products/featured/', '/api/products/', ...categories.map((c) => `/api/products/?category=${c.id}`)]);
    for (const key of this.app.caches.api.recentKeys(100)) {
      const parts = splitKey(key);
      if (parts && parts[0] === this.defaultOrigin) urls.add(parts[1]);
    }
    return urls;
  }

  /** Runs the routes for every target; one at a time, so warming never crowds out shoppers. */
  warm(): Promise<WarmResult> {
    this.running ??= (async () => {
      const started = Date.now();
      let requests = 0;
      try {
        const { protocol, host } = new URL(this.defaultOrigin);
        // An https origin is only ever seen behind a trusted proxy: warm as if through it.
        const viaProxy = protocol === 'https:' ? this.config.trustedProxies[0]?.split('/')[0] : undefined;
        for (const url of await this.targets()) {
          await this.app
            .inject({
              method: 'GET',
              url,
              // Marked as the server's own, so warming never spends a client's rate limit.
              headers: { host, ...internalHeaders(this.app), ...(viaProxy ? { 'x-forwarded-proto': 'https', 'x-forwarded-host': host } : {}) },
              ...(viaProxy ? { remoteAddress: viaProxy } : {}),
            })
            .catch(() => undefined);
          requests++;
        }
      } finally {
        this.running = undefined;
      }
      return { requests, ms: Date.now() - started };
    })();
    return this.running;
  }

  /** Warms now and shortly after each invalidation; the `warm_cache` task re-warms on its schedule. */
  start(): void {
    const log = this.app.log;
    const run = (why: string) =>
      this.warm().then(
        (r) => log.debug({ ...r, why }, 'cache warmed'),
        (err: unknown) => log.warn({ err, why }, 'cache warming failed'),
      );
    void run('start-up');
    // A burst of writes re-warms once, a quarter second after the last of them; only the instance
    // that made the write re-warms (the others find the new entries in Redis).
    this.stopListening = this.app.caches.api.onInvalidation((_m, own) => {
      if (!own) return;
      clearTimeout(this.pending);
      this.pending = setTimeout(() => void run('invalidation'), 250);
      this.pending.unref();
    });
  }

  async stop(): Promise<void> {
    clearTimeout(this.pending);
    this.stopListening?.();
    await this.running?.catch(() => undefined);
  }
}
