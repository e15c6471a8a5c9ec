/**
 * Chart.js 4 drawn on @napi-rs/canvas (prebuilt Skia, no system Cairo): PNG buffers, no DOM, no animation.
 */
import { createCanvas } from '@napi-rs/canvas';
import { Chart, registerables, type ChartConfiguration, type Plugin } from 'chart.js';

Chart.register(...registerables);

const whiteBackground: Plugin = {
  id: 'whiteBackground',
  beforeDraw(chart) {
    const { ctx, width, height } = chart;
    ctx.save();
    ctx.globalCompositeOperation = 'destination-over';
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width, height);
    ctx.restore();
  },
};

export const PALETTE = [
  '#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
  '#393b79', '#e7969c', '#637939', '#ad494a', '#6b6ecf', '#b5cf6b', '#843c39', '#d6616b', '#7b4173', '#3182bd',
];

export function color(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

/** Draws now; the PNG is encoded off the main thread (libuv pool), so callers can draw the next chart meanwhile. */
export async function renderChart(config: ChartConfiguration, width = 760, height = 440): Promise<Buffer> {
  const canvas = createCanvas(width, height);
  const options = { ...(config.options ?? {}), responsive: false, animation: false as const, devicePixelRatio: 1 };
  const chart = new Chart(canvas.getContext('2d') as unknown as CanvasRenderingContext2D, {
    ...config,
    options,
    plugins: [...(config.plugins ?? []), whiteBackground],
  } as ChartConfiguration);
  try {
    return await canvas.encode('png');
  } finally {
    chart.destroy();
  }
}
