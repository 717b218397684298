// A small lint config: the recommended JS and TypeScript rules, plus a guard that
// the pure modules never import `vscode` (node's test runner loads them directly).
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "out/", "syntaxes/", "artifacts/", "**/*.vsix"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["src/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      eqeqeq: ["error", "always"],
      curly: "error",
    },
  },
  {
    files: ["src/pure/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { paths: [{ name: "vscode", message: "pure modules must not import vscode" }] }],
    },
  },
  {
    files: ["src/webview/**/*.ts"],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ["**/*.mjs", "**/*.js", "**/*.cjs"],
    languageOptions: { globals: { ...globals.node } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // Functions passed to page.evaluate run in the browser.
    files: ["test/render/**", "test/e2e/**"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
);
