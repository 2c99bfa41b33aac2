"""The web app for people: server-rendered pages at `/` over the same actors as the JSON
API, with our own CSS and small JavaScript modules (no build step, nothing from other
hosts, every page working without JavaScript).

Parts:

- `setup` — `setup_pages(app)`: templates, static files, routes, the middleware (called
  from `splitgo.web.create_app`);
- `keys` — what the pages keep on the app, and PAGE_ATTR, the mark of a page's handler;
- `render` — `render(request, template, context)` and `redirect(path)`; the navigation;
- `forms` — a posted form to the JSON route's body and message, refusals at their inputs;
- `sessions` — browser sessions over auth's tokens: `viewer_of(request)`, sign in and out;
- `guards` — `@signed_in`, safe `?next=` targets, the API's rate limits for forms;
- `csrf`, `cookies` — the CSRF token of every form, the cookies and one-time notices;
- `refreshing` — one token refresh per refresh token on a node;
- `middleware` — the strict CSP, no caching, queued cookies, errors as pages;
- `static` — content-hashed static files and the favicon;
- `ui`, `money` — template filters: money in the reader's language, avatars, times;
- pages: `entry` (welcome, sign in and out, social sign-in), `accounts` (sign up, verify
  email, forgot and reset password), `home`.

Templates are in `templates/` (`base.html` the layout, `ui.html` the component macros),
static files in `static/` (`app.css`, `app.js`, `password.js`, `favicon.svg`).
"""

from __future__ import annotations
