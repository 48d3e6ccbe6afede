import { defineConfig } from 'vite';

// The page is served by `segme serve`: `/` is static/index.html and everything else of the
// build lies under `/static/`, so asset URLs are rooted there.
export default defineConfig({
  base: '/static/',
  build: {
    outDir: '../src/segme/serve/static',
    emptyOutDir: true,
    // the .wasm must stay a separate file (fetched by onnxruntime-web), never inlined
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
  },
  // `npm run dev` serves the page with hot reload; the API comes from a running `segme serve`.
  server: { proxy: { '/v1': 'http://127.0.0.1:8000' } },
});
