// Starts Swagger UI on the page's #swagger-ui element, reading the OpenAPI document it names.
// A file of its own (not an inline script) so the page's CSP needs no 'unsafe-inline' for scripts.
(function () {
  var root = document.getElementById('swagger-ui');
  window.ui = SwaggerUIBundle({
    url: root.getAttribute('data-spec-url'),
    domNode: root,
    deepLinking: true,
  });
})();
