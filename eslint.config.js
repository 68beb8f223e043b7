// @ts-check
/**
 * One flat config for the whole tree, by globs, so that new packages, apps and files are covered
 * as they come: TypeScript with type-aware rules (each file checked against the nearest
 * tsconfig.json), plain JavaScript for scripts, benches, fixtures and configs, browser globals for
 * the frontend's page script. Formatting is Prettier's job, not ESLint's.
 */
const { defineConfig, globalIgnores } = require('eslint/config');
const js = require('@eslint/js');
const prettier = require('eslint-config-prettier');
const globals = require('globals');
const tseslint = require('typescript-eslint');

module.exports = defineConfig([
  globalIgnores(['**/dist/', '**/coverage/', '**/.turbo/', 'data/', 'bench/results.json']),

  { files: ['**/*.{js,cjs,mjs,ts,mts,cts}'], extends: [js.configs.recommended] },
  {
    files: ['**/*.{js,cjs,mjs}'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'commonjs', globals: { ...globals.node } },
  },
  { files: ['**/*.mjs'], languageOptions: { sourceType: 'module' } },
  {
    // The upload page's script runs in the browser, as a classic script.
    files: ['apps/frontend/public/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },

  {
    files: ['**/*.{ts,mts,cts}'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: __dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Passing on what was caught, or an AbortSignal's reason (typed any), is not a string thrown.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // `async () => value` is how a fake or a readiness check fulfils a promise-returning
      // interface, and turns a throw into a rejection; `Promise.resolve(value)` would not.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // jest's asymmetric matchers (expect.any, expect.stringMatching, ...) are typed `any`.
    files: ['**/test/**/*.{ts,mts,cts}', 'e2e/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  prettier,
]);
