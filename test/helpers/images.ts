// Sample images for the media tests and the benchmark: made here, never checked in. A "photo" is
// a smooth, shaded scene with some grain, the kind of picture a shop shows of a print (pure noise
// would make every encoder look bad, flat colour every encoder look good).
import { crc32 } from 'node:zlib';
import sharp from 'sharp';

/** Raw RGB pixels: a lit sphere on a gradient backdrop, with a little grain. */
function scene(width: number, height: number, seed = 1): Buffer {
  const px = Buffer.alloc(width * height * 3);
  let s = seed;
  const grain = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) % 13) - 6;
  const [cx, cy, r] = [width * 0.55, height * 0.5, Math.min(width, height) * 0.32];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const dx = (x - cx) / r;
      const dy = (y - cy) / r;
      const d = dx * dx + dy * dy;
      let rgb: [number, number, number];
      if (d < 1) {
        // Lambert shading from the upper left on a terracotta print.
        const light = Math.max(0, -dx * 0.5 - dy * 0.6 + Math.sqrt(1 - d) * 0.62);
        rgb = [200 * light + 30, 110 * light + 20, 70 * light + 15];
      } else {
        const t = y / height;
        rgb = [230 - 60 * t + 10 * Math.sin(x / 40), 228 - 50 * t, 220 - 30 * t];
      }
      const g = grain();
      px[i] = Math.max(0, Math.min(255, rgb[0] + g));
      px[i + 1] = Math.max(0, Math.min(255, rgb[1] + g));
      px[i + 2] = Math.max(0, Math.min(255, rgb[2] + g));
    }
  }
  return px;
}

export function photo(width: number, height: number, format: 'jpeg' | 'png' | 'webp' = 'jpeg', seed = 1): Promise<Buffer> {
  const img = sharp(scene(width, height, seed), { raw: { width, height, channels: 3 } });
  return (format === 'jpeg' ? img.jpeg({ quality: 92 }) : format === 'png' ? img.png() : img.webp({ quality: 92 })).toBuffer();
}

/** A PNG whose header claims a huge size: the bytes of a decompression bomb, without the bomb. */
export async function bomb(): Promise<Buffer> {
  const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
  // IHDR: type at bytes 12-15, width and height at 16-23, its CRC (over type and data) at 29-32.
  png.writeUInt32BE(50_000, 16);
  png.writeUInt32BE(50_000, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}
