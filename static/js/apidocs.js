// Swagger UI (bundled with django-ninja) on vmdash's schema; "Try it out"
// sends the page's CSRF token, so calls made here run as the logged-in person.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("swagger-ui");
  if (!box || typeof SwaggerUIBundle === "undefined") return;
  SwaggerUIBundle({
    url: box.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: (req) => {
      req.headers["X-CSRFToken"] = box.dataset.csrfToken;
      return req;
    },
  });
});
