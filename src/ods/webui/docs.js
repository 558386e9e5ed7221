// The API reference at /docs: Swagger UI, served by this server (no CDN), over /openapi.json.
window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // No badge from validator.swagger.io: nothing is fetched from elsewhere.
  validatorUrl: null,
  presets: [window.SwaggerUIBundle.presets.apis],
});
