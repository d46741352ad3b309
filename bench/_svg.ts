// A hand-written SVG bar chart of speed ratios (no dependencies): one row per operation,
// one bar per baseline, on a log scale centred on 1× so "faster" and "slower" read the same.

/** One bar of the chart. */
export interface RatioBar {
  /** Which baseline the ratio is against (one colour each, in the legend). */
  series: string;
  /** snaplog's speed over the baseline's: > 1 means snaplog is faster. */
  ratio: number;
}

/** One row of the chart: an operation and its bars. */
export interface RatioRow {
  label: string;
  bars: RatioBar[];
  /** The target ratio, drawn as a tick on the row, when there is one. */
  target?: number;
}

const COLORS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fmtRatio(r: number): string {
  return r >= 10 ? `${r.toFixed(0)}×` : r >= 1 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`;
}

/**
 * Renders the rows as an SVG document.
 *
 * @param title Heading drawn at the top.
 * @param subtitle A second line (machine, date).
 * @param rows The operations.
 * @returns The SVG text.
 */
export function ratioChartSvg(title: string, subtitle: string, rows: RatioRow[]): string {
  const series = [...new Set(rows.flatMap((r) => r.bars.map((b) => b.series)))];
  const labelW = 330, plotW = 520, barH = 14, gap = 4, rowPad = 10, top = 78, right = 70;
  const rowH = (r: RatioRow): number => Math.max(1, r.bars.length) * (barH + gap) + rowPad;
  const height = top + rows.reduce((a, r) => a + rowH(r), 0) + 40;
  const width = labelW + plotW + right;
  const ratios = rows.flatMap((r) => [...r.bars.map((b) => b.ratio), ...(r.target ? [r.target] : [])]);
  // Decades that cover every ratio, at least 0.1× … 10×.
  const lo = Math.min(-1, Math.floor(Math.log10(Math.min(...ratios.filter((x) => x > 0), 1))));
  const hi = Math.max(1, Math.ceil(Math.log10(Math.max(...ratios, 1))));
  const x = (r: number): number =>
    Math.round((labelW + ((Math.log10(Math.max(r, 10 ** lo)) - lo) / (hi - lo)) * plotW) * 10) / 10;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="12" y="40" fill="#555">${esc(subtitle)}</text>`,
  );
  series.forEach((s, i) => {
    const lx = labelW + i * 170;
    out.push(
      `<rect x="${lx}" y="52" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${lx + 16}" y="62">${esc(s)}</text>`,
    );
  });
  const plotBottom = height - 30;
  for (let d = lo; d <= hi; d++) {
    const gx = x(10 ** d);
    out.push(
      `<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${plotBottom}" stroke="${
        d === 0 ? "#333" : "#ddd"
      }"/>`,
      `<text x="${gx}" y="${plotBottom + 14}" text-anchor="middle" fill="#555">${fmtRatio(10 ** d)}</text>`,
    );
  }
  out.push(
    `<text x="${labelW + plotW}" y="${
      plotBottom + 28
    }" text-anchor="end" fill="#555">snaplog speed ÷ baseline speed (log scale; right of 1× = snaplog faster)</text>`,
  );
  let y = top;
  for (const row of rows) {
    const h = rowH(row);
    out.push(
      `<text x="${labelW - 8}" y="${y + (h - rowPad) / 2 + 4}" text-anchor="end">${esc(row.label)}</text>`,
    );
    row.bars.forEach((b, i) => {
      const by = y + i * (barH + gap);
      const x0 = x(1), x1 = x(b.ratio);
      const color = COLORS[series.indexOf(b.series) % COLORS.length];
      out.push(
        `<rect x="${Math.min(x0, x1)}" y="${by}" width="${
          Math.max(1, Math.abs(x1 - x0))
        }" height="${barH}" fill="${color}"><title>${
          esc(`${row.label}: ${fmtRatio(b.ratio)} ${b.series}`)
        }</title></rect>`,
        `<text x="${Math.max(x0, x1) + 4}" y="${by + barH - 3}" fill="#222">${fmtRatio(b.ratio)}</text>`,
      );
    });
    if (row.target !== undefined) {
      const tx = x(row.target);
      out.push(
        `<line x1="${tx}" y1="${y - 2}" x2="${tx}" y2="${
          y + h - rowPad + 2
        }" stroke="#e53e3e" stroke-width="2" stroke-dasharray="3,2"><title>target ${
          fmtRatio(row.target)
        }</title></line>`,
      );
    }
    y += h;
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
