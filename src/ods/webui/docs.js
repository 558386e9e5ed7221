// The API reference at /docs: Swagger UI, served by this server (no CDN), over /openapi.json.
window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
});
