// Image processing on upload: time per upload for the variants made at once (WebP and JPEG at each
// IMAGE_WIDTHS width), time for the AVIF job, and the bytes WebP and AVIF save over the original
// at the same pixels. Sample images are the tests' generated photos; nothing is checked in.
import { loadConfig } from '../src/config.ts';
import { inspect, render, type VariantFormat } from '../src/infra/media/images.ts';
import { photo } from '../test/helpers/images.ts';

const SAMPLES: { name: string; width: number; height: number; format: 'jpeg' | 'png' }[] = [
  { name: 'photo 1600×1000 JPEG q92', width: 1600, height: 1000, format: 'jpeg' },
  { name: 'photo 3000×2000 JPEG q92', width: 3000, height: 2000, format: 'jpeg' },
  { name: 'render 1200×1200 PNG', width: 1200, height: 1200, format: 'png' },
];
const RUNS = 5;
// AVIF takes seconds: three runs.

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export async function mediaBench(say: (msg: string) => void): Promise<{ rows: string[]; claims: string[] }> {
  const { widths, maxPixels } = loadConfig({ SECRET_KEY: 'x'.repeat(32) }).media;
  const rows: string[] = [
    `Image processing, median of ${RUNS} runs per upload and 3 per AVIF job, widths ${widths.join(', ')}:`,
    '',
    '| sample | original | upload: WebP + JPEG variants | AVIF job | WebP, same pixels | AVIF, same pixels | JPEG q82, same pixels |',
    '|---|---|---|---|---|---|---|',
  ];
  const savings: { webp: number; avif: number }[] = [];
  const uploads: number[] = [];
  for (const s of SAMPLES) {
    say(`media: ${s.name}`);
    const bytes = await photo(s.width, s.height, s.format);
    const info = await inspect(bytes, maxPixels);
    const at = async (formats: VariantFormat[]) => render(bytes, info, widths, formats, maxPixels);
    // What an upload request does: read the header, then make the variants.
    const uploadTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) uploadTimes.push(await timed(async () => at((await inspect(bytes, maxPixels)) && ['webp', 'jpeg'])));
    const upload = median(uploadTimes);
    const avifTimes: number[] = [];
    for (let i = 0; i < 3; i++) avifTimes.push(await timed(() => at(['avif'])));
    // The same pixels as the original, so the bytes compare like for like.
    const full = Object.fromEntries((await render(bytes, info, [info.width], ['webp', 'avif', 'jpeg'], maxPixels)).map((r) => [r.format, r.bytes.length])) as Record<VariantFormat, number>;
    const pct = (n: number) => `${((1 - n / bytes.length) * 100).toFixed(0)}% smaller`;
    rows.push(`| ${s.name} | ${(bytes.length / 1024).toFixed(0)} KiB | ${upload.toFixed(0)} ms | ${median(avifTimes).toFixed(0)} ms | ${(full.webp / 1024).toFixed(0)} KiB (${pct(full.webp)}) | ${(full.avif / 1024).toFixed(0)} KiB (${pct(full.avif)}) | ${(full.jpeg / 1024).toFixed(0)} KiB (${pct(full.jpeg)}) |`);
    savings.push({ webp: 1 - full.webp / bytes.length, avif: 1 - full.avif / bytes.length });
    uploads.push(upload);
  }
  const range = (xs: number[]) => `${(Math.min(...xs) * 100).toFixed(0)}–${(Math.max(...xs) * 100).toFixed(0)}%`;
  const claims = [
    `**media** — an upload's variants (WebP and JPEG at ${widths.length} widths) take ${Math.round(Math.min(...uploads))}–${Math.round(Math.max(...uploads))} ms; AVIF runs in a job`,
    `**media** — at the same pixels, WebP saves ${range(savings.map((s) => s.webp))} and AVIF ${range(savings.map((s) => s.avif))} of the original's bytes`,
  ];
  return { rows, claims };
}
