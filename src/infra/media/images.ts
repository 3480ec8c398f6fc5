// Image checks and variants with sharp (the seed's "automatic image resizing on upload"). The type
// is read from the bytes, never from the file name; the pixel count is checked from the header
// before anything is decoded, so an image bomb costs nothing. Variants are made at each configured
// width (never wider than the original) in WebP and JPEG at once; AVIF, slow to encode, in a job.
import { createHash } from 'node:crypto';
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';

/** Formats accepted on upload. SVG is refused: it is a document that can run script. */
export type SourceFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif';
export type VariantFormat = 'webp' | 'jpeg' | 'avif';

export const EXTENSIONS: Record<SourceFormat | VariantFormat, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', avif: 'avif', gif: 'gif' };

export interface ImageInfo {
  format: SourceFormat;
  /** As displayed, after the EXIF orientation is applied. */
  width: number;
  height: number;
  /** EXIF, XMP or IPTC present (camera, software, often the place it was taken). */
  hasMetadata: boolean;
}

/** Why an upload was refused; the route turns it into a 4xx. */
export class ImageRejected extends Error {
  constructor(
    readonly reason: 'not_an_image' | 'unsupported' | 'too_many_pixels',
    message: string,
  ) {
    super(message);
  }
}

export const NOT_AN_IMAGE = 'Upload a valid image. The file you uploaded was either not an image or a corrupted image.';

function open(bytes: Buffer, maxPixels: number): Sharp {
  // failOn 'error': a truncated or corrupt file is refused rather than half decoded.
  return sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', sequentialRead: true });
}

/** Reads the header: the real type and size, or ImageRejected. Decodes nothing. */
export async function inspect(bytes: Buffer, maxPixels: number): Promise<ImageInfo> {
  let meta: Metadata;
  try {
    if (bytes.length === 0) throw new Error('empty');
    // Header only: our own pixel check below gives the clear message (sharp's would refuse silently).
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new ImageRejected('not_an_image', NOT_AN_IMAGE);
  }
  const format = sourceFormat(meta);
  if (!format) throw new ImageRejected('unsupported', `Unsupported image type "${meta.format}". Upload a JPEG, PNG, WebP, AVIF or GIF image.`);
  const { width, height } = meta.autoOrient ?? meta;
  if (!width || !height) throw new ImageRejected('not_an_image', NOT_AN_IMAGE);
  if (width * height > maxPixels) throw new ImageRejected('too_many_pixels', `The image has ${width}×${height} pixels; at most ${maxPixels.toLocaleString('en-US')} pixels are accepted.`);
  return { format, width, height, hasMetadata: Boolean(meta.exif || meta.xmp || meta.iptc) };
}

function sourceFormat(meta: Metadata): SourceFormat | undefined {
  switch (meta.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
    case 'gif':
      return meta.format;
    case 'heif':
      // AVIF is AV1 in a HEIF container; HEIC (HEVC) is not supported by browsers.
      return meta.compression === 'av1' ? 'avif' : undefined;
    default:
      return undefined;
  }
}

/** A made variant, before it is stored. */
export interface Rendition {
  width: number;
  height: number;
  format: VariantFormat;
  bytes: Buffer;
}

/** The widths variants are made at: each configured one, capped at the original's width. */
export function targetWidths(widths: readonly number[], original: number): number[] {
  return [...new Set(widths.map((w) => Math.min(w, original)))];
}

function encode(pipeline: Sharp, format: VariantFormat | 'png'): Sharp {
  switch (format) {
    case 'webp':
      return pipeline.webp({ quality: 80, effort: 4 });
    case 'jpeg':
      // No alpha in JPEG: transparent parts become white, as on the storefront's cards.
      return pipeline.flatten({ background: '#ffffff' }).jpeg({ quality: 82, mozjpeg: true });
    case 'avif':
      return pipeline.avif({ quality: 55, effort: 4 });
    case 'png':
      return pipeline.png({ compressionLevel: 9 });
  }
}

// A decoded 40-megapixel image is ~160 MB: at most two renders at a time per process, whatever
// the number of parallel uploads and jobs. Written by hand: a counter and a queue of waiters.
const RENDER_SLOTS = 2;
let rendering = 0;
const waiting: (() => void)[] = [];

async function withRenderSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (rendering >= RENDER_SLOTS) await new Promise<void>((resolve) => waiting.push(resolve));
  else rendering++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else rendering--;
  }
}

/**
 * Every variant of the image in the given formats: oriented, resized, metadata stripped (sharp
 * keeps none unless asked). The original is decoded once, to the largest width wanted; the
 * smaller widths and the encodings are made from those pixels, one after another. A file that
 * only looked like an image fails here with ImageRejected.
 */
export async function render(bytes: Buffer, info: ImageInfo, widths: readonly number[], formats: readonly VariantFormat[], maxPixels: number): Promise<Rendition[]> {
  const targets = targetWidths(widths, info.width).sort((a, b) => b - a);
  return withRenderSlot(async () => {
    let pixels: { data: Buffer; info: OutputInfo };
    try {
      pixels = await open(bytes, maxPixels).rotate().resize({ width: targets[0], withoutEnlargement: true }).raw().toBuffer({ resolveWithObject: true });
    } catch {
      throw new ImageRejected('not_an_image', NOT_AN_IMAGE);
    }
    const { width, height, channels } = pixels.info;
    const out: Rendition[] = [];
    for (const target of targets) {
      for (const format of formats) {
        const pipeline = sharp(pixels.data, { raw: { width, height, channels } }).resize({ width: target });
        const { data, info: made } = await encode(pipeline, format).toBuffer({ resolveWithObject: true });
        out.push({ width: made.width, height: made.height, format, bytes: data });
      }
    }
    return out.sort((a, b) => a.width - b.width);
  });
}

/**
 * The image at full size without its metadata (EXIF can carry the place a photo was taken), in
 * its own kind of format: the copy the API shows when the upload carried metadata.
 */
export async function withoutMetadata(bytes: Buffer, info: ImageInfo, maxPixels: number): Promise<{ bytes: Buffer; format: SourceFormat }> {
  const format: VariantFormat | 'png' = info.format === 'png' || info.format === 'gif' ? 'png' : info.format;
  return withRenderSlot(async () => {
    try {
      return { bytes: await encode(open(bytes, maxPixels).rotate(), format === 'jpeg' ? 'jpeg' : format).toBuffer(), format };
    } catch {
      throw new ImageRejected('not_an_image', NOT_AN_IMAGE);
    }
  });
}

/** The first 16 hex digits of the bytes' SHA-256: enough to name a file uniquely. */
export function contentHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** `dir/hash.ext` for an original, `dir/hash-width.ext` for a variant: names that change with the bytes. */
export function mediaKey(dir: string, bytes: Buffer, format: SourceFormat | VariantFormat, width?: number): string {
  return `${dir}/${contentHash(bytes)}${width === undefined ? '' : `-${width}`}.${EXTENSIONS[format]}`;
}
