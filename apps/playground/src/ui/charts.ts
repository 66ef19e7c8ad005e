// Canvas drawings of the dictionary: counts per row (bars) and a 2-D view of the centroid keys
// with the current query and its read weights. Rows spawned since the previous frame are drawn
// in the accent colour. Canvases follow their box's CSS width (ResizeObserver) at device pixels.
import type { DictSnapshot } from '../engine/run.js';
import { createRng, normalizeRow, normals } from '../inputs/random.js';

const COLORS = {
  row: '#4a6fa5',
  fresh: '#d9480f',
  query: '#111',
  axis: '#8a8f98',
  text: '#333',
  weight: '#2b8a3e',
};

// CSS content-box sizes kept by a ResizeObserver: reading clientWidth after the frame's text
// updates would force a style and layout pass in every frame.
const sizes = new WeakMap<HTMLCanvasElement, { w: number; h: number }>();
const resizes =
  typeof ResizeObserver === 'undefined'
    ? null
    : new ResizeObserver((entries) => {
        for (const e of entries) {
          const { width, height } = e.contentRect;
          sizes.set(e.target as HTMLCanvasElement, { w: width, h: height });
        }
      });

function cssSize(canvas: HTMLCanvasElement): { w: number; h: number } {
  let size = resizes ? sizes.get(canvas) : undefined;
  if (!size) {
    size = { w: canvas.clientWidth, h: canvas.clientHeight };
    if (resizes) {
      sizes.set(canvas, size);
      resizes.observe(canvas);
    }
  }
  return size;
}

/** Sizes the canvas's backing store to its CSS box; returns the 2-D context and CSS size. */
function prepare(canvas: HTMLCanvasElement): { g: CanvasRenderingContext2D; w: number; h: number } {
  const ratio = globalThis.devicePixelRatio || 1;
  const size = cssSize(canvas);
  const w = Math.max(1, size.w);
  const h = Math.max(1, size.h);
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const g = canvas.getContext('2d') as CanvasRenderingContext2D;
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = '12px system-ui, sans-serif';
  return { g, w, h };
}

/** Bars: one per dictionary row in spawn order, height = count (log scale when counts spread). */
export function drawCounts(
  canvas: HTMLCanvasElement,
  state: DictSnapshot,
  freshFrom: number,
): void {
  const { g, w, h } = prepare(canvas);
  const counts = state.counts;
  const n = counts.length;
  const pad = { l: 36, r: 8, t: 8, b: 20 };
  const max = counts.reduce((m, c) => Math.max(m, c), 1);
  const logScale = max > 50;
  const scale = (c: number) => (logScale ? Math.log1p(c) / Math.log1p(max) : c / max);
  g.fillStyle = COLORS.axis;
  g.fillRect(pad.l, h - pad.b, w - pad.l - pad.r, 1);
  g.fillStyle = COLORS.text;
  g.textAlign = 'right';
  g.fillText(String(max), pad.l - 4, pad.t + 10);
  g.fillText('0', pad.l - 4, h - pad.b);
  g.textAlign = 'left';
  g.fillText(`${n} rows${logScale ? ' (log scale)' : ''}`, pad.l, h - 4);
  if (n === 0) return;
  const bw = (w - pad.l - pad.r) / n;
  const plotH = h - pad.t - pad.b;
  for (let i = 0; i < n; i++) {
    const bh = Math.max(1, scale(counts[i]) * plotH);
    g.fillStyle = i >= freshFrom ? COLORS.fresh : COLORS.row;
    g.fillRect(pad.l + i * bw, h - pad.b - bh, Math.max(1, bw - (bw > 3 ? 1 : 0)), bh);
  }
}

let projection: Float64Array | null = null;
let projectionDim = 0;

/** A fixed (seeded) random orthonormal 2 × dim projection. */
function projectionFor(dim: number): Float64Array {
  if (!projection || projectionDim !== dim) {
    const p = normals(createRng(1234), 2 * dim);
    normalizeRow(p, 0, dim);
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += p[d] * p[dim + d];
    for (let d = 0; d < dim; d++) p[dim + d] -= dot * p[d];
    normalizeRow(p, dim, dim);
    projection = p;
    projectionDim = dim;
  }
  return projection;
}

function project(
  x: ArrayLike<number>,
  offset: number,
  dim: number,
  unit: boolean,
): [number, number] {
  const p = projectionFor(dim);
  let a = 0;
  let b = 0;
  let s = 0;
  for (let d = 0; d < dim; d++) {
    const v = x[offset + d];
    a += p[d] * v;
    b += p[dim + d] * v;
    s += v * v;
  }
  const inv = unit && s > 0 ? 1 / Math.sqrt(s) : 1;
  return [a * inv, b * inv];
}

/**
 * Centroid keys through a fixed random 2-D projection: dot area ∝ count, ring width ∝ the current
 * query's read weight; the query (normalised) as a cross.
 */
export function drawProjection(
  canvas: HTMLCanvasElement,
  state: DictSnapshot,
  query: Float32Array,
  weights: Float64Array,
  freshFrom: number,
): void {
  const { g, w, h } = prepare(canvas);
  const dim = state.keyDim;
  const keys = state.centroidKeys;
  const counts = state.counts;
  const n = state.size;
  const unit = state.normalize;
  const points: [number, number][] = [];
  let extent = 1e-6;
  for (let i = 0; i < n; i++) {
    const p = project(keys, i * dim, dim, false);
    points.push(p);
    extent = Math.max(extent, Math.abs(p[0]), Math.abs(p[1]));
  }
  const qp = project(query, 0, dim, unit);
  extent = Math.max(extent, Math.abs(qp[0]), Math.abs(qp[1])) * 1.1;
  const cx = w / 2;
  const cy = h / 2;
  const r = Math.min(w, h) / 2 - 10;
  const at = ([a, b]: [number, number]): [number, number] => [
    cx + (a / extent) * r,
    cy - (b / extent) * r,
  ];
  g.strokeStyle = COLORS.axis;
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(cx - r, cy);
  g.lineTo(cx + r, cy);
  g.moveTo(cx, cy - r);
  g.lineTo(cx, cy + r);
  g.stroke();
  const maxCount = counts.reduce((m, c) => Math.max(m, c), 1);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) maxWeight = Math.max(maxWeight, weights[i] ?? 0);
  for (let i = 0; i < n; i++) {
    const [x, y] = at(points[i]);
    const radius = 2 + 8 * Math.sqrt(counts[i] / maxCount);
    g.globalAlpha = 0.75;
    g.fillStyle = i >= freshFrom ? COLORS.fresh : COLORS.row;
    g.beginPath();
    g.arc(x, y, radius, 0, 2 * Math.PI);
    g.fill();
    g.globalAlpha = 1;
    const wt = maxWeight > 0 ? (weights[i] ?? 0) / maxWeight : 0;
    if (wt > 0.05) {
      g.strokeStyle = COLORS.weight;
      g.lineWidth = 1 + 3 * wt;
      g.beginPath();
      g.arc(x, y, radius + 2 + 2 * wt, 0, 2 * Math.PI);
      g.stroke();
    }
  }
  const [qx, qy] = at(qp);
  g.strokeStyle = COLORS.query;
  g.lineWidth = 2;
  g.beginPath();
  g.moveTo(qx - 6, qy - 6);
  g.lineTo(qx + 6, qy + 6);
  g.moveTo(qx + 6, qy - 6);
  g.lineTo(qx - 6, qy + 6);
  g.stroke();
}
