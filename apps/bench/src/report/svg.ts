// Hand-written SVG plots (no chart library): log/linear axes, line series with p20–p80 whiskers,
// and horizontal bars. Every series is a <g class="series" data-series=…> and every data point a
// `.mark`, so the report test can count what was drawn.

export type Point = { x: number; y: number; lo?: number; hi?: number; label?: string };
export type Series = {
  name: string;
  points: Point[];
  dashed?: boolean;
  /** An SVG dash pattern (overrides `dashed`), e.g. '2 3' for dotted. */
  dash?: string;
  color?: string;
};

/** A reference line (no marks, not a series): drawn dashed grey through `points`. */
export type Guide = { name: string; points: { x: number; y: number }[] };

export type LinePlot = {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  xLog: boolean;
  yLog: boolean;
  series: Series[];
  guides?: Guide[];
  /** Log-axis floor: values below are drawn at it (e.g. "≤ 1 KiB"). */
  yFloor?: number;
  /** Whether a linear y axis starts at 0 (default true; false fits the data, e.g. losses). */
  yZero?: boolean;
};

export type Bar = { group: string; label: string; value: number; highlight?: boolean };
export type BarPlot = { id: string; title: string; xLabel: string; bars: Bar[]; max?: number };

const W = 800;
const H = 380;
const M = { left: 70, right: 250, top: 34, bottom: 50 };
const PALETTE = [
  '#d62728',
  '#1f77b4',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const fmt = (v: number) => {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
};

/** Tick values: powers of 10 (with 2× and 5× when the range is narrow) or ~5 round steps. */
export function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const lo = Math.floor(Math.log10(min));
    const hi = Math.ceil(Math.log10(max));
    const steps = hi - lo <= 2 ? [1, 2, 5] : [1];
    const out: number[] = [];
    for (let e = lo; e <= hi; e++) for (const s of steps) out.push(s * 10 ** e);
    return out.filter((t) => t >= min * 0.999 && t <= max * 1.001);
  }
  const span = max - min || 1;
  const step0 = 10 ** Math.floor(Math.log10(span / 5));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= 6) ?? step0 * 10;
  const out: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + 1e-9; t += step)
    out.push(+t.toPrecision(12));
  return out;
}

function scale(min: number, max: number, log: boolean, a: number, b: number) {
  const f = log ? Math.log10 : (v: number) => v;
  const lo = f(min);
  const hi = f(max);
  return (v: number) => a + ((f(v) - lo) / (hi - lo || 1)) * (b - a);
}

function extent(values: number[], log: boolean, zero: boolean): [number, number] {
  const vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (vs.length === 0) return log ? [1, 10] : [0, 1];
  let lo = Math.min(...vs);
  let hi = Math.max(...vs);
  if (log) {
    if (lo === hi) [lo, hi] = [lo / 2, hi * 2];
    return [lo / 1.15, hi * 1.15];
  }
  if (zero) lo = Math.min(0, lo);
  if (lo === hi) hi = lo + 1;
  return [lo, hi + (hi - lo) * 0.08];
}

export function colorFor(index: number): string {
  return PALETTE[index % PALETTE.length];
}

/** One colour per mixer, the same in every plot of every report. */
export const MIXER_COLORS: Record<string, string> = {
  ovq: '#d62728',
  softmax: '#1f77b4',
  linear: '#2ca02c',
  'decay-linear': '#ff7f0e',
  'gated-deltanet': '#9467bd',
  vq: '#8c564b',
  kvm: '#e377c2',
  swa: '#17becf',
};

export function mixerColor(mixer: string): string {
  return MIXER_COLORS[mixer] ?? '#7f7f7f';
}

export function linePlot(p: LinePlot): string {
  const floor = p.yFloor;
  const clamp = (y: number) => (floor !== undefined && y < floor ? floor : y);
  if (floor !== undefined) {
    p = {
      ...p,
      series: p.series.map((s) => ({
        ...s,
        points: s.points.map((q) => ({
          ...q,
          y: clamp(q.y),
          lo: q.lo === undefined ? undefined : clamp(q.lo),
          hi: q.hi === undefined ? undefined : clamp(q.hi),
        })),
      })),
    };
  }
  const pts: Point[] = [
    ...p.series.flatMap((s) => s.points),
    ...(p.guides ?? []).flatMap((g) => g.points),
  ];
  const [x0, x1] = extent(
    pts.map((q) => q.x),
    p.xLog,
    false,
  );
  const [y0, y1] = extent(
    pts.flatMap((q) => [q.y, q.lo ?? q.y, q.hi ?? q.y]),
    p.yLog,
    p.yZero ?? true,
  );
  const sx = scale(x0, x1, p.xLog, M.left, W - M.right);
  const sy = scale(y0, y1, p.yLog, H - M.bottom, M.top);
  const out: string[] = [];
  out.push(
    `<svg class="plot" data-plot="${p.id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(p.title)}">`,
  );
  out.push(
    `<text x="${W / 2 - M.right / 2 + M.left / 2}" y="20" text-anchor="middle" class="title">${escapeXml(p.title)}</text>`,
  );
  out.push(
    `<g class="axes" stroke="#999" fill="none"><rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}"/></g>`,
  );
  for (const t of ticks(x0, x1, p.xLog)) {
    const x = sx(t).toFixed(1);
    out.push(
      `<line class="grid" x1="${x}" x2="${x}" y1="${M.top}" y2="${H - M.bottom}" stroke="#eee"/><text x="${x}" y="${H - M.bottom + 16}" text-anchor="middle" class="tick">${fmt(t)}</text>`,
    );
  }
  for (const t of ticks(y0, y1, p.yLog)) {
    const y = sy(t).toFixed(1);
    out.push(
      `<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${M.left - 6}" y="${y}" dy="4" text-anchor="end" class="tick">${fmt(t)}</text>`,
    );
  }
  out.push(
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle" class="label">${escapeXml(p.xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">${escapeXml(p.yLabel)}</text>`,
  );
  const line = (points: { x: number; y: number }[]) =>
    points
      .filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y) && (!p.yLog || q.y > 0))
      .map((q, j) => `${j ? 'L' : 'M'}${sx(q.x).toFixed(1)},${sy(q.y).toFixed(1)}`)
      .join('');
  const nSeries = p.series.length;
  (p.guides ?? []).forEach((g, i) => {
    out.push(
      `<g class="guide" data-guide="${escapeXml(g.name)}"><path d="${line(g.points)}" fill="none" stroke="#888" stroke-width="1.2" stroke-dasharray="3 4"/></g>`,
    );
    const ly = M.top + 8 + (nSeries + i) * 18;
    out.push(
      `<g class="legend" transform="translate(${W - M.right + 12} ${ly})"><line x1="0" x2="18" y1="0" y2="0" stroke="#888" stroke-width="1.2" stroke-dasharray="3 4"/><text x="24" y="4" class="legend-text">${escapeXml(g.name)}</text></g>`,
    );
  });
  p.series.forEach((s, i) => {
    const color = s.color ?? colorFor(i);
    const dash = s.dash ?? (s.dashed ? '6 4' : undefined);
    const valid = s.points.filter(
      (q) => Number.isFinite(q.x) && Number.isFinite(q.y) && (!p.yLog || q.y > 0),
    );
    const d = valid
      .map((q, j) => `${j ? 'L' : 'M'}${sx(q.x).toFixed(1)},${sy(q.y).toFixed(1)}`)
      .join('');
    out.push(
      `<g class="series" data-series="${escapeXml(s.name)}" stroke="${color}" fill="${color}">`,
    );
    if (valid.length > 1)
      out.push(
        `<path d="${d}" fill="none" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      );
    for (const q of valid) {
      const cx = sx(q.x).toFixed(1);
      if (q.lo !== undefined && q.hi !== undefined) {
        out.push(
          `<line class="whisker" x1="${cx}" x2="${cx}" y1="${sy(q.lo).toFixed(1)}" y2="${sy(q.hi).toFixed(1)}" stroke-width="1.5"/>`,
        );
      }
      out.push(
        `<circle class="mark" cx="${cx}" cy="${sy(q.y).toFixed(1)}" r="3.5"><title>${escapeXml(`${s.name}: ${q.label ?? `${fmt(q.x)} → ${fmt(q.y)}`}`)}</title></circle>`,
      );
    }
    out.push('</g>');
    const ly = M.top + 8 + i * 18;
    out.push(
      `<g class="legend" transform="translate(${W - M.right + 12} ${ly})"><line x1="0" x2="18" y1="0" y2="0" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/><text x="24" y="4" class="legend-text">${escapeXml(s.name)}</text></g>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

export function barPlot(p: BarPlot): string {
  const rowH = 22;
  const left = 300;
  const right = 60;
  const h = M.top + p.bars.length * rowH + 40;
  const max = p.max ?? Math.max(1e-9, ...p.bars.map((b) => b.value));
  const sx = (v: number) => left + (Math.max(0, v) / max) * (W - left - right);
  const out: string[] = [];
  out.push(
    `<svg class="plot" data-plot="${p.id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="${escapeXml(p.title)}">`,
  );
  out.push(
    `<text x="${W / 2}" y="20" text-anchor="middle" class="title">${escapeXml(p.title)}</text>`,
  );
  const groups = [...new Set(p.bars.map((b) => b.group))];
  out.push('<g class="series" data-series="bars">');
  p.bars.forEach((b, i) => {
    const y = M.top + i * rowH;
    const color = colorFor(groups.indexOf(b.group));
    out.push(
      `<text x="${left - 8}" y="${y + 14}" text-anchor="end" class="tick">${escapeXml(`${b.group}: ${b.label}`)}</text>`,
    );
    out.push(
      `<rect class="bar mark" x="${left}" y="${y + 3}" width="${Math.max(1, sx(b.value) - left).toFixed(1)}" height="${rowH - 6}" fill="${color}"${b.highlight ? ' stroke="#000"' : ''}><title>${escapeXml(`${b.group} ${b.label}: ${fmt(b.value)}`)}</title></rect>`,
    );
    out.push(
      `<text x="${sx(b.value) + 4}" y="${y + 14}" class="tick">${(100 * b.value).toFixed(1)}%</text>`,
    );
  });
  out.push('</g>');
  out.push(
    `<text x="${(left + W - right) / 2}" y="${h - 10}" text-anchor="middle" class="label">${escapeXml(p.xLabel)}</text>`,
  );
  out.push('</svg>');
  return out.join('\n');
}

export type HeatCell = {
  col: number;
  row: number;
  /** In [0, 1]; null where there is no data (hatched, marked "—", never coloured as 0). */
  value: number | null;
  label: string;
};
export type HeatPanel = { name: string; color: string; cells: HeatCell[] };
export type HeatmapPanels = {
  id: string;
  title: string;
  colLabel: string;
  rowLabel: string;
  cols: number[];
  rows: number[];
  panels: HeatPanel[];
};

/** Light to dark blue over [0, 1] (one scale for every panel, so panels compare). */
export function heatColor(v: number): string {
  const t = Math.min(1, Math.max(0, v));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${mix(247, 8)},${mix(251, 48)},${mix(255, 107)})`;
}

/**
 * Small-multiple heatmaps, one panel per series (its colour on the title bar): columns and rows
 * are the given values, each cell a `.cell.mark` (data-col, data-row; `.missing` when empty).
 */
export function heatmapPanels(p: HeatmapPanels): string {
  const cell = { w: 44, h: 22 };
  const panelW = 70 + p.cols.length * cell.w + 20;
  const panelH = 28 + p.rows.length * cell.h + 34;
  const perRow = Math.max(1, Math.floor(W / panelW));
  const lines = Math.ceil(p.panels.length / perRow);
  const width = Math.max(W, perRow * panelW);
  const height = 34 + lines * panelH + 30;
  const out: string[] = [];
  out.push(
    `<svg class="plot" data-plot="${p.id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(p.title)}">`,
  );
  out.push(
    `<defs><pattern id="${p.id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#bbb" stroke-width="2"/></pattern></defs>`,
  );
  out.push(
    `<text x="${width / 2}" y="20" text-anchor="middle" class="title">${escapeXml(p.title)}</text>`,
  );
  p.panels.forEach((panel, i) => {
    const x0 = (i % perRow) * panelW;
    const y0 = 34 + Math.floor(i / perRow) * panelH;
    out.push(
      `<g class="series" data-series="${escapeXml(panel.name)}" transform="translate(${x0} ${y0})">`,
    );
    out.push(
      `<rect x="70" y="0" width="${p.cols.length * cell.w}" height="4" fill="${panel.color}"/><text x="70" y="18" class="legend-text">${escapeXml(panel.name)}</text>`,
    );
    p.rows.forEach((r, j) => {
      out.push(
        `<text x="64" y="${28 + j * cell.h + 15}" text-anchor="end" class="tick">${escapeXml(`${p.rowLabel.split(' ').at(-1)} ${fmt(r)}`)}</text>`,
      );
    });
    p.cols.forEach((c, k) => {
      out.push(
        `<text x="${70 + k * cell.w + cell.w / 2}" y="${28 + p.rows.length * cell.h + 14}" text-anchor="middle" class="tick">${fmt(c)}</text>`,
      );
    });
    for (const c of panel.cells) {
      const k = p.cols.indexOf(c.col);
      const j = p.rows.indexOf(c.row);
      if (k < 0 || j < 0) continue;
      const x = 70 + k * cell.w;
      const y = 28 + j * cell.h;
      const empty = c.value === null;
      const fill = empty ? `url(#${p.id}-hatch)` : heatColor(c.value!);
      const text = empty ? '—' : `${Math.round(100 * c.value!)}`;
      const ink = !empty && c.value! > 0.55 ? '#fff' : '#333';
      out.push(
        `<g class="cell mark${empty ? ' missing' : ''}" data-col="${c.col}" data-row="${c.row}"><rect x="${x}" y="${y}" width="${cell.w - 2}" height="${cell.h - 2}" fill="${fill}" stroke="#ddd"/><text x="${x + cell.w / 2 - 1}" y="${y + 15}" text-anchor="middle" class="tick" style="fill:${ink}">${text}</text><title>${escapeXml(`${panel.name}: ${c.label}`)}</title></g>`,
      );
    }
    out.push('</g>');
  });
  out.push(
    `<text x="${width / 2}" y="${height - 10}" text-anchor="middle" class="label">${escapeXml(`${p.colLabel}; cells: accuracy % (hatched "—": no data)`)}</text>`,
  );
  out.push('</svg>');
  return out.join('\n');
}
