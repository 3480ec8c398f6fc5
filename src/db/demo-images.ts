// The demo catalog's pictures, made on this machine: one SVG per category and kind of product
// (a stylised print of the category's shape, in the category's colour, with the kind's name and
// visible layer lines), plus a close-up and a top view per category. sharp renders each to PNG,
// which goes through the media pipeline like an upload (WebP and JPEG variants at once, AVIF in
// the background job). The pool is bounded (a few dozen pictures whatever the number of
// products), stored under SHARED_PREFIX and shared by every product of that kind.
import sharp from 'sharp';
import { storeSharedImage, type SharedImage } from '../modules/media/media.service.ts';
import { SHARED_PREFIX, type MediaStorage } from '../infra/media/storage.ts';

/** What the pool needs of the media pipeline. */
export interface DemoMedia {
  storage: MediaStorage;
  widths: readonly number[];
  maxPixels: number;
}

export type DemoView = 'main' | 'detail' | 'top';

export interface DemoPicture {
  category: string;
  /** The kind of product (the noun of its name: Vase, Gear…); empty for the category's close-up and top view. */
  kind: string;
  view: DemoView;
}

/** Rendered size: every configured width up to 600 gets a variant; big enough for a product page. */
const SIZE = 600;

/** Hue and silhouette per category. */
const LOOKS: Record<string, { hue: number; shape: (fill: string) => string }> = {
  Miniatures: { hue: 265, shape: figure },
  'Tabletop Terrain': { hue: 30, shape: tower },
  'Home Decor': { hue: 195, shape: vase },
  'Lamps & Lighting': { hue: 45, shape: lamp },
  Planters: { hue: 120, shape: planter },
  'Desk Organizers': { hue: 215, shape: organizer },
  'Mechanical Parts': { hue: 0, shape: gear },
  'Cosplay & Props': { hue: 350, shape: helmet },
  'Toys & Games': { hue: 160, shape: cube },
  Jewelry: { hue: 310, shape: ring },
  'Educational Models': { hue: 250, shape: helix },
  'Wall Art': { hue: 20, shape: relief },
};

export function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

export function pictureName(p: DemoPicture): string {
  return p.view === 'main' ? `${slug(p.category)}-${slug(p.kind)}` : `${slug(p.category)}-${p.view}`;
}

/** A small integer from a string, so a kind's tint and tilt stay the same from run to run. */
function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The picture as SVG (viewBox 800×800): background, shadow, the printed object, a caption. */
export function demoSvg(p: DemoPicture, size = SIZE): string {
  const look = LOOKS[p.category] ?? { hue: hash(p.category) % 360, shape: vase };
  const h = (look.hue + (hash(p.kind) % 5) * 7 - 14 + 360) % 360;
  const light = 48 + (hash(p.kind) % 3) * 5;
  const layers = `<pattern id="layers" width="800" height="9" patternUnits="userSpaceOnUse"><rect width="800" height="9" fill="hsl(${h},62%,${light}%)"/><rect y="6.5" width="800" height="2.5" fill="hsl(${h},62%,${light - 12}%)"/></pattern>`;
  const defs = `<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="hsl(${h},40%,95%)"/><stop offset="1" stop-color="hsl(${h},35%,82%)"/></linearGradient>${layers}</defs>`;
  let body: string;
  let caption: string;
  if (p.view === 'detail') {
    // Close-up: the layers under the nozzle.
    body = `<rect x="0" y="330" width="800" height="330" fill="url(#layers)"/>
      <path d="M350 120 h100 v90 l-30 60 h-40 l-30 -60 z" fill="hsl(0,0%,35%)"/><rect x="392" y="270" width="16" height="60" fill="hsl(${h},62%,${light}%)"/>
      <rect x="330" y="80" width="140" height="50" rx="8" fill="hsl(0,0%,25%)"/>`;
    caption = 'Layer detail';
  } else if (p.view === 'top') {
    // From above: perimeters and infill.
    const rings = [260, 228, 196].map((r) => `<circle cx="400" cy="380" r="${r}" fill="none" stroke="hsl(${h},62%,${light - 8}%)" stroke-width="14"/>`).join('');
    const infill = Array.from({ length: 13 }, (_, i) => `<line x1="${220 + i * 30}" y1="200" x2="${220 + i * 30 - 180}" y2="560" stroke="hsl(${h},55%,${light + 10}%)" stroke-width="6"/>`).join('');
    body = `<clipPath id="c"><circle cx="400" cy="380" r="180"/></clipPath><g clip-path="url(#c)">${infill}</g>${rings}`;
    caption = 'Top view';
  } else {
    const tilt = (hash(p.kind) % 9) - 4;
    body = `<ellipse cx="400" cy="628" rx="250" ry="42" fill="hsl(${h},20%,55%)" opacity="0.45"/><g transform="rotate(${tilt} 400 620)">${look.shape('url(#layers)')}</g>`;
    caption = p.kind;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 800 800">${defs}
    <rect width="800" height="800" fill="url(#bg)"/>${body}
    <text x="400" y="722" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="50" font-weight="bold" text-anchor="middle" fill="hsl(${h},45%,22%)">${esc(caption)}</text>
    <text x="400" y="768" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="26" text-anchor="middle" fill="hsl(${h},30%,38%)">${esc(p.category)} · Pasargad Prints</text>
  </svg>`;
}

/** The picture as a PNG, as a shop owner would upload it. */
export async function demoPng(p: DemoPicture): Promise<Buffer> {
  return sharp(Buffer.from(demoSvg(p))).png({ compressionLevel: 6 }).toBuffer();
}

/**
 * Makes and stores the pictures (each once: the same picture gives the same bytes and keys, so
 * a second seed writes the same files again). Two at a time: sharp's render slots bound it anyway.
 * An aborted `signal` stops it between pictures (the map then holds fewer).
 */
export async function makeDemoImages(media: DemoMedia, pictures: readonly DemoPicture[], onProgress?: (done: number, total: number) => void, signal?: AbortSignal): Promise<Map<string, SharedImage>> {
  const out = new Map<string, SharedImage>();
  let next = 0;
  const worker = async () => {
    while (next < pictures.length && !signal?.aborted) {
      const p = pictures[next++]!;
      const name = pictureName(p);
      out.set(name, await storeSharedImage(media, `${SHARED_PREFIX}${name}`, await demoPng(p)));
      onProgress?.(out.size, pictures.length);
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

/** Without media storage (tests that never fetch images): a tiny inline SVG per picture, nothing to fetch. */
export function inlinePicture(p: DemoPicture): string {
  const look = LOOKS[p.category] ?? { hue: hash(p.category) % 360 };
  return `data:image/svg+xml,${encodeURIComponent(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8" fill="hsl(${look.hue},60%,55%)"/></svg>`)}`;
}

// Silhouettes, in an 800×800 box standing on y = 620.

function figure(fill: string): string {
  return `<ellipse cx="400" cy="610" rx="150" ry="30" fill="${fill}"/>
    <path d="M300 600 C 310 480, 330 380, 360 330 L 440 330 C 470 380, 490 480, 500 600 Z" fill="${fill}"/>
    <path d="M360 340 L 300 420 L 320 430 L 372 372 Z M440 340 L 510 300 L 520 318 L 430 376 Z" fill="${fill}"/>
    <circle cx="400" cy="280" r="58" fill="${fill}"/>`;
}

function tower(fill: string): string {
  return `<path d="M290 620 L 310 260 L 290 260 L 290 200 L 330 200 L 330 230 L 370 230 L 370 200 L 430 200 L 430 230 L 470 230 L 470 200 L 510 200 L 510 260 L 490 260 L 510 620 Z" fill="${fill}"/>
    <path d="M380 620 L 380 540 Q 400 510 420 540 L 420 620 Z M385 330 h30 v60 h-30 z" fill="hsl(0,0%,20%)" opacity="0.55"/>`;
}

function vase(fill: string): string {
  return `<path d="M310 620 C 230 520, 250 380, 340 320 C 360 300, 350 250, 335 210 L 465 210 C 450 250, 440 300, 460 320 C 550 380, 570 520, 490 620 Z" fill="${fill}"/>`;
}

function lamp(fill: string): string {
  return `<circle cx="400" cy="300" r="190" fill="hsl(50,100%,85%)" opacity="0.6"/>
    <path d="M270 380 C 270 230, 530 230, 530 380 Z" fill="${fill}"/>
    <rect x="388" y="380" width="24" height="200" fill="${fill}"/><ellipse cx="400" cy="605" rx="110" ry="22" fill="${fill}"/>`;
}

function planter(fill: string): string {
  return `<path d="M400 360 C 330 260, 300 200, 330 140 C 390 200, 410 280, 400 360 Z M400 360 C 470 250, 520 220, 560 230 C 530 300, 470 340, 400 360 Z M400 360 C 330 320, 270 320, 240 290 C 300 270, 360 290, 400 360 Z" fill="hsl(120,45%,38%)"/>
    <path d="M270 360 L 530 360 L 500 620 L 300 620 Z" fill="${fill}"/>`;
}

function organizer(fill: string): string {
  return `<rect x="340" y="230" width="22" height="200" rx="8" fill="hsl(0,0%,30%)" transform="rotate(-12 351 430)"/>
    <rect x="400" y="210" width="22" height="220" rx="8" fill="hsl(0,0%,45%)"/><rect x="450" y="250" width="22" height="180" rx="8" fill="hsl(0,0%,30%)" transform="rotate(10 461 430)"/>
    <path d="M250 400 L 550 400 L 550 620 L 250 620 Z" fill="${fill}"/>`;
}

function gear(fill: string): string {
  const teeth = 12;
  const pts: string[] = [];
  for (let i = 0; i < teeth * 4; i++) {
    const a = (i / (teeth * 4)) * Math.PI * 2;
    const r = i % 4 < 2 ? 210 : 170;
    pts.push(`${(400 + r * Math.cos(a)).toFixed(1)},${(400 + r * Math.sin(a)).toFixed(1)}`);
  }
  return `<path d="M${pts.join(' L')} Z M 400 340 A 60 60 0 1 0 400.1 340 Z" fill="${fill}" fill-rule="evenodd"/>`;
}

function helmet(fill: string): string {
  return `<path d="M240 560 C 220 300, 330 190, 400 190 C 470 190, 580 300, 560 560 L 500 600 L 300 600 Z" fill="${fill}"/>
    <path d="M285 390 L 515 390 L 490 450 L 420 450 L 400 520 L 380 450 L 310 450 Z" fill="hsl(0,0%,15%)" opacity="0.8"/>`;
}

function cube(fill: string): string {
  return `<path d="M400 200 L 580 300 L 580 510 L 400 610 L 220 510 L 220 300 Z" fill="${fill}"/>
    <path d="M400 410 L 400 610 M400 410 L 580 300 M400 410 L 220 300" stroke="hsl(0,0%,100%)" stroke-width="10" opacity="0.7"/>`;
}

function ring(fill: string): string {
  return `<path d="M400 250 A 190 190 0 1 0 400.1 250 Z M400 300 A 140 140 0 1 1 399.9 300 Z" fill="${fill}" fill-rule="evenodd" transform="translate(0 40)"/>
    <path d="M400 170 L 450 230 L 400 300 L 350 230 Z" fill="hsl(190,80%,70%)" stroke="hsl(190,60%,40%)" stroke-width="6"/>`;
}

function helix(fill: string): string {
  const rungs = Array.from({ length: 9 }, (_, i) => {
    const y = 200 + i * 48;
    const x = 110 * Math.sin(i * 0.8);
    return `<line x1="${400 - x}" y1="${y}" x2="${400 + x}" y2="${y}" stroke="hsl(0,0%,40%)" stroke-width="10"/><circle cx="${400 - x}" cy="${y}" r="26" fill="${fill}"/><circle cx="${400 + x}" cy="${y}" r="26" fill="${fill}"/>`;
  });
  return rungs.join('');
}

function relief(fill: string): string {
  return `<rect x="200" y="180" width="400" height="440" rx="10" fill="hsl(30,30%,30%)"/><rect x="225" y="205" width="350" height="390" fill="hsl(40,40%,94%)"/>
    <path d="M225 595 L 225 470 L 320 330 L 380 420 L 450 280 L 575 480 L 575 595 Z" fill="${fill}"/>`;
}
