// Opens HTML in headless Chromium (playwright-core with Debian's /usr/bin/chromium, installed by
// .ci/webgpu-setup.sh) and reports what each SVG plot actually rendered.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CHROMIUM, CHROMIUM_ARGS } from '@ovq/vitest-config/chromium';
import { reportUnavailable } from '@ovq/vitest-config/unavailable';

/** Why the browser tests cannot run here, or null. Under CI a missing browser is a failure. */
export function browserMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const reason = `${CHROMIUM} not found (install it with .ci/webgpu-setup.sh or apt-get install chromium)`;
  reportUnavailable(`[report test] ${reason}`);
  return reason;
}

export type RenderedPlot = {
  id: string;
  width: number;
  height: number;
  contentWidth: number;
  contentHeight: number;
  series: number;
  marks: number;
  /** Marks whose own bounding box is non-empty. */
  visibleMarks: number;
  seriesMarks: number[];
};

export async function renderPlots(htmlPath: string): Promise<RenderedPlot[]> {
  const { chromium } = await import('playwright-core');
  const html = readFileSync(htmlPath);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', ...CHROMIUM_ARGS],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return await page.evaluate(() =>
      (Array.from(document.querySelectorAll('svg.plot')) as SVGSVGElement[]).map((svg) => {
        const rect = svg.getBoundingClientRect();
        const content = svg.getBBox();
        const marks = Array.from(svg.querySelectorAll('.mark')) as SVGGraphicsElement[];
        return {
          id: svg.dataset.plot ?? '',
          width: rect.width,
          height: rect.height,
          contentWidth: content.width,
          contentHeight: content.height,
          series: svg.querySelectorAll('g.series').length,
          marks: marks.length,
          visibleMarks: marks.filter((m) => {
            const b = m.getBBox();
            return b.width > 0 && b.height > 0;
          }).length,
          seriesMarks: Array.from(svg.querySelectorAll('g.series')).map(
            (g) => g.querySelectorAll('.mark').length,
          ),
        };
      }),
    );
  } finally {
    await browser.close();
    server.close();
  }
}
