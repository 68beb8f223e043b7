// Starts Swagger UI on /docs over this server's own OpenAPI document.
'use strict';

window.ui = window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // The badge would send the document to validator.swagger.io: nothing leaves this server.
  validatorUrl: null,
  // A ?url= or ?configUrl= in the page's address is not followed to another host.
  queryConfigEnabled: false,
});
