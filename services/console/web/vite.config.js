import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Served by the console service at /console/ behind the gateway; every asset is bundled (no CDN, no web
// fonts): the platform runs on government intranets without internet access.
export default defineConfig({
  base: '/console/',
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
    modulePreload: { polyfill: false },
    rollupOptions: {
      output: {
        manualChunks(id) {
          if (id.includes('node_modules/echarts') || id.includes('node_modules/zrender')) return 'charts'
          if (id.includes('node_modules')) return 'vendor'
        },
      },
    },
  },
})
