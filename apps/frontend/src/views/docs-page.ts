/** Where the docs page's Swagger UI files are served from (swagger-ui-dist, from node_modules). */
export const DOCS_ASSETS_PATH = '/docs/assets';

/**
 * The interactive API documentation: Swagger UI over this server's /openapi.json. Everything it
 * loads comes from this server (/docs.js starts it, with the online validator off); no inline
 * script, so the page runs under a Content-Security-Policy.
 */
export function renderDocsPage(): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>pixelmill API</title>
    <link rel="icon" href="/favicon.svg" type="image/svg+xml">
    <link rel="stylesheet" href="${DOCS_ASSETS_PATH}/swagger-ui.css">
    <script src="${DOCS_ASSETS_PATH}/swagger-ui-bundle.js" defer></script>
    <script src="/docs.js" defer></script>
  </head>
  <body>
    <noscript><p>This page needs JavaScript; the API's description is at <a href="/openapi.json">/openapi.json</a>.</p></noscript>
    <div id="swagger-ui"></div>
  </body>
</html>
`;
}
