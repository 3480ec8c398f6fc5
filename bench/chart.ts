// The report's chart, drawn as SVG by hand (no plotting dependency): one row per measured target,
// requests per second on the left and the p50–p95–p99 latency on the right, both on log scales
// because the targets span three orders of magnitude (an uncached search to the bare route).

export interface ChartRow {
  label: string;
  mode: 'cache off' | 'cache on' | 'bare route';
  rps: number;
  p50: number;
  p95: number;
  p99: number;
}

const COLORS: Record<ChartRow['mode'], string> = { 'cache off': '#d95f02', 'cache on': '#1b9e77', 'bare route': '#7570b3' };
const ROW = 20;
const TOP = 58;
const PANEL_W = 300;
const GAP = 60;

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(x >= 10_000 ? 0 : 1)}k` : x >= 10 ? x.toFixed(0) : x.toFixed(1));

/** Room for the longest label at about 6 px a character. */
const labelWidth = (rows: ChartRow[]) => Math.ceil(Math.max(20, ...rows.map((r) => r.label.length)) * 6.2) + 10;

/** A log axis over whole decades covering the values. */
function logAxis(values: number[], x0: number) {
  const positive = values.filter((v) => v > 0);
  const lo = Math.floor(Math.log10(positive.length ? Math.min(...positive) : 1));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(positive.length ? Math.max(...positive) : 10)));
  const at = (v: number) => x0 + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * PANEL_W;
  const ticks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
  return { at, ticks };
}

export function chart(title: string, rows: ChartRow[]): string {
  const LABEL_W = labelWidth(rows);
  const height = TOP + rows.length * ROW + 40;
  const width = LABEL_W + 2 * PANEL_W + 2 * GAP + 60;
  const rpsX = LABEL_W + 10;
  const latX = rpsX + PANEL_W + GAP;
  const rps = logAxis(rows.map((r) => r.rps), rpsX);
  const lat = logAxis(rows.flatMap((r) => [r.p50, r.p99]), latX);
  const bottom = TOP + rows.length * ROW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${escape(title)}</text>`,
    `<text x="${rpsX}" y="${TOP - 22}" font-weight="bold">requests/s (log)</text>`,
    `<text x="${latX}" y="${TOP - 22}" font-weight="bold">latency ms, p50 ● p95 | p99 ◆ (log)</text>`,
  ];
  for (const [axis, x0] of [
    [rps, rpsX],
    [lat, latX],
  ] as const) {
    for (const t of axis.ticks) {
      const x = axis.at(t);
      out.push(`<line x1="${x}" y1="${TOP - 6}" x2="${x}" y2="${bottom}" stroke="#ddd"/>`, `<text x="${x}" y="${bottom + 14}" text-anchor="middle" fill="#555">${fmt(t)}</text>`);
    }
    out.push(`<line x1="${x0}" y1="${TOP - 6}" x2="${x0}" y2="${bottom}" stroke="#888"/>`);
  }
  rows.forEach((r, i) => {
    const y = TOP + i * ROW;
    const mid = y + ROW / 2;
    const color = COLORS[r.mode];
    if (i % 2 === 1) out.push(`<rect x="0" y="${y}" width="${width}" height="${ROW}" fill="#f6f6f6"/>`);
    out.push(`<text x="${LABEL_W}" y="${mid + 4}" text-anchor="end">${escape(r.label)}</text>`);
    const w = Math.max(1, rps.at(r.rps) - rpsX);
    out.push(`<rect x="${rpsX}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW - 8}" fill="${color}"/>`);
    out.push(`<text x="${rpsX + w + 4}" y="${mid + 4}" fill="#333">${fmt(r.rps)}</text>`);
    const [a, b, c] = [lat.at(r.p50), lat.at(r.p95), lat.at(r.p99)];
    out.push(
      `<line x1="${a.toFixed(1)}" y1="${mid}" x2="${c.toFixed(1)}" y2="${mid}" stroke="${color}" stroke-width="2"/>`,
      `<circle cx="${a.toFixed(1)}" cy="${mid}" r="4" fill="${color}"/>`,
      `<line x1="${b.toFixed(1)}" y1="${mid - 5}" x2="${b.toFixed(1)}" y2="${mid + 5}" stroke="${color}" stroke-width="2"/>`,
      `<path d="M${c.toFixed(1)} ${mid - 5} l5 5 l-5 5 l-5 -5 z" fill="${color}"/>`,
      `<text x="${(c + 8).toFixed(1)}" y="${mid + 4}" fill="#333">${fmt(r.p99)}</text>`,
    );
  });
  // Legend under the title.
  let lx = 10;
  for (const [mode, color] of Object.entries(COLORS)) {
    out.push(`<rect x="${lx}" y="28" width="10" height="10" fill="${color}"/>`, `<text x="${lx + 14}" y="37">${mode}</text>`);
    lx += 90;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
