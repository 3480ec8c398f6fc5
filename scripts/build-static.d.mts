// Types for build-static.mjs, which the server imports to rebuild stale static files.
export interface Source {
  path: string;
  data: Buffer;
}
export interface Manifest {
  /** sourceHash() of what the build was made from. */
  source: string;
  /** Logical path (`docs/init.js`) → hashed path (`docs/init.3f2a9c1b7e4d.js`), under the build dir. */
  files: Record<string, string>;
}
export const PUBLIC_DIR: string;
export const OUT_DIR: string;
export function readSources(publicDir?: string): Promise<Source[]>;
export function sourceHash(sources: Source[]): string;
export function hashedName(path: string, data: Buffer): string;
export function buildStatic(options?: { outDir?: string; publicDir?: string; sources?: Source[]; replace?: boolean }): Promise<Manifest>;
