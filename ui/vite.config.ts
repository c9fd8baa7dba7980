import { defineConfig } from 'vite';

// The UI is served by `sluice serve` and loaded by the Tauri window from `dist/`: relative
// asset paths, no inline scripts (the CSP forbids them), nothing fetched from the network.
export default defineConfig({
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', modulePreload: { polyfill: false } },
  test: { environment: 'happy-dom', globals: true, include: ['src/**/*.test.ts'] },
});
