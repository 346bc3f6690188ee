// Three bundles: the extension (node, `vscode` external), the engine's CLI/helper (node, runs on its
// own: `node dist/devsnap.js`), and the webview UI (web). tsc (`out/`) is only for tests.
'use strict';
const path = require('path');
const webpack = require('webpack');

const tsRule = { test: /\.ts$/, exclude: /node_modules/, use: [{ loader: 'ts-loader', options: { transpileOnly: true } }] };
const common = (mode) => ({
  mode: mode || 'production',
  devtool: 'source-map',
  resolve: { extensions: ['.ts', '.js'] },
  module: { rules: [tsRule] },
  output: { path: path.join(__dirname, 'dist'), filename: '[name].js', devtoolModuleFilenameTemplate: '../[resource-path]' },
  infrastructureLogging: { level: 'warn' },
  performance: { hints: false },
});

module.exports = (_env, argv) => [
  {
    ...common(argv.mode),
    name: 'extension',
    target: 'node',
    entry: { extension: './extension/extension.ts' },
    output: { ...common(argv.mode).output, libraryTarget: 'commonjs2' },
    externals: { vscode: 'commonjs vscode' },
    plugins: [new webpack.optimize.LimitChunkCountPlugin({ maxChunks: 1 })], // one file, as the engine's
  },
  {
    ...common(argv.mode),
    name: 'engine',
    target: 'node',
    // The CLI and the worker thread it spawns for compression.
    entry: { devsnap: './imaging/cli.ts', 'compress-worker': './imaging/repo/compress-worker.ts' },
    output: { ...common(argv.mode).output, libraryTarget: 'commonjs2' },
    node: { __dirname: false }, // the worker pool finds compress-worker.js beside the bundle
    optimization: { minimize: false }, // zstd-codec's inlined WASM makes minifying slow and saves little
    plugins: [
      new webpack.BannerPlugin({ banner: '#!/usr/bin/env node', raw: true, include: /^devsnap\.js$/ }),
      // Modules some commands load on demand (import()) stay inside the bundle: the engine is copied
      // file by file (automation/engine-copy.ts, the recovery kit) and must not grow chunk files.
      new webpack.optimize.LimitChunkCountPlugin({ maxChunks: 1 }),
    ],
  },
  {
    ...common(argv.mode),
    name: 'webview',
    target: 'web',
    entry: { webview: './webview-ui/main.ts' },
  },
];
