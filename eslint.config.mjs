// ESLint (flat config): `npm run lint`, `npm run lint:fix`. typescript-eslint's recommended rules
// (not the type-checked ones) over the TypeScript of every folder, ESLint's recommended rules over the
// Node scripts (bench/, scripts/, the test harness in test/). The layers of imaging/ are checked by
// dependency-cruiser (`npm run check:layers`, .dependency-cruiser.js), not here.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['out/', 'dist/', 'node_modules/', 'bench/.work/', '.vscode-test/', '.cache/', '.test-artifacts/', 'test/fixtures/', 'test/fuzz/corpus/'],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  // TypeScript: the engine, the CLI and the tests run under Node; the extension host too.
  {
    files: ['imaging/**/*.ts', 'extension/**/*.ts', 'test/**/*.ts'],
    languageOptions: { globals: globals.node },
  },
  // The webview runs in a browser frame (webview-ui/tsconfig.json: DOM, no Node types).
  {
    files: ['webview-ui/**/*.ts'],
    languageOptions: { globals: globals.browser },
  },
  // The engine runs without VS Code (the rest of the layering is dependency-cruiser's).
  {
    files: ['imaging/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vscode', message: 'imaging/ is the engine: it runs without VS Code (see .dependency-cruiser.js, engine-alone).' }],
        },
      ],
    },
  },
  // Node scripts in CommonJS: the benchmark, the demo and host setup, the test runners and harness,
  // the CLI's entry point and the build and layer configurations at the top.
  {
    files: ['bench/**/*.js', 'scripts/**/*.js', 'test/**/*.js', 'bin/**/*.js', '*.js', '**/*.cjs'],
    // globalReturn: the module's top level is a function scope, as under Node, so `const crypto = require('crypto')`
    // shadows the global crypto instead of redeclaring it (no-redeclare).
    languageOptions: { sourceType: 'commonjs', globals: globals.node, parserOptions: { ecmaFeatures: { globalReturn: true } } },
    rules: {
      // They are CommonJS: require() is how they import.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
  // The Playwright e2e tests pass functions to page.evaluate / waitForFunction: they run in the page.
  {
    files: ['test/host/**/*.js'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
);
