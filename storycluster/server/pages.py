"""The article page and the embeddable widget. The page renders its related list with the widget
itself, so a browser test of the page tests what a website embeds.

Embedding on another site (the server must allow that site's origin, ``serve --cors-origin``)::

    <div id="related"></div>
    <script src="https://related.example.org/widget.js" data-article="ARTICLE-ID" data-k="5"
            data-target="related"></script>
"""

from __future__ import annotations

from html import escape

from ..article import headline
from ..language import direction

WIDGET_JS = r"""/* storycluster related-articles widget: renders GET /articles/{id}/related into a list.
   <script src=".../widget.js" data-article="ID" [data-k="5"] [data-target="element-id"]
           [data-per-source="1"] [data-max-age-days="30"] [data-link="https://site.example/news/{id}"]></script>
   Only http(s) URLs become links; an entry without one links to data-link ({id} replaced), else to this server. */
(function () {
  "use strict";
  var RTL = ["ar", "fa", "he", "ur", "ps", "ku", "yi", "dv", "sd", "ug"];
  function dirOf(lang) { return lang && RTL.indexOf(String(lang).split("-")[0].toLowerCase()) >= 0 ? "rtl" : "auto"; }
  // a link only to an absolute http(s) address: a stored url is untrusted text (javascript:, data:, ...)
  function webUrl(u) {
    if (typeof u !== "string" || !/^https?:\/\/[^\s\/?#]+/i.test(u) || /[\u0000-\u0020\u007f]/.test(u)) return null;
    try { var p = new URL(u); return (p.protocol === "http:" || p.protocol === "https:") ? p.href : null; }
    catch (e) { return null; }
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;   // text only: nothing from the API is parsed as HTML
    return e;
  }
  function render(target, base, data) {
    var list = el("ol", "storycluster-related");
    data.related.forEach(function (item) {
      var li = el("li", "storycluster-item");
      li.setAttribute("data-id", item.id);
      var a = el("a", "storycluster-title", item.title || item.id);
      if (item.lang) a.lang = item.lang;
      a.dir = dirOf(item.lang);   // the title runs in its own direction; the list follows the page
      a.href = webUrl(item.url) || (link ? link.split("{id}").join(encodeURIComponent(item.id))
                                          : base + "/articles/" + encodeURIComponent(item.id));
      li.appendChild(a);
      var meta = [item.source, item.published].filter(Boolean).join(" · ");
      if (meta) li.appendChild(el("span", "storycluster-meta", meta));
      if (item.also_in && item.also_in.length) {
        var n = item.also_in.length, outlets = {}, named = 0;
        item.also_in.forEach(function (o) { if (o.source && !outlets[o.source]) { outlets[o.source] = 1; named++; } });
        var label = named === n ? "also in " + n + (n === 1 ? " outlet" : " outlets")
                                : "+" + n + (n === 1 ? " other version" : " other versions");
        var also = el("span", "storycluster-also", label);
        also.dir = "ltr";
        also.title = item.also_in.map(function (o) { return o.source || o.id; }).join(", ");
        li.appendChild(also);
      }
      list.appendChild(li);
    });
    target.innerHTML = "";
    if (!data.related.length) target.appendChild(el("p", "storycluster-empty", "No related articles."));
    else target.appendChild(list);
    target.setAttribute("data-state", "ready");
  }
  var script = document.currentScript;
  if (!script) return;
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  // where an entry without a url of its own links to (the site's page for that id); default: this server's page
  var link = script.getAttribute("data-link");
  var id = script.getAttribute("data-article");
  var target = script.getAttribute("data-target") ? document.getElementById(script.getAttribute("data-target")) : null;
  if (!target) { target = el("div", "storycluster-widget"); script.parentNode.insertBefore(target, script.nextSibling); }
  if (!id) { target.setAttribute("data-state", "error"); return; }
  var params = ["k=" + encodeURIComponent(script.getAttribute("data-k") || "5")];
  ["per-source", "max-age-days", "since", "lang", "exclude", "diversity"].forEach(function (name) {
    var v = script.getAttribute("data-" + name);
    if (v) params.push(name.replace(/-/g, "_") + "=" + encodeURIComponent(v));
  });
  target.setAttribute("data-state", "loading");
  fetch(base + "/articles/" + encodeURIComponent(id) + "/related?" + params.join("&"))
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (data) { render(target, base, data); })
    .catch(function (e) {
      target.setAttribute("data-state", "error");
      target.textContent = "Related articles unavailable (" + e.message + ").";
    });
})();
"""

_STYLE = """
body { font: 16px/1.5 system-ui, 'Noto Naskh Arabic', 'Noto Sans Arabic', sans-serif; margin: 2rem auto;
       max-width: 46rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; line-height: 1.3; }
.meta, .storycluster-meta { color: #666; font-size: .9rem; }
.storycluster-also { color: #8a4b00; font-size: .9rem; }
.body p { margin: .6rem 0; }
aside { border-top: 1px solid #ddd; margin-top: 2rem; }
.storycluster-related li { margin: .5rem 0; }
.storycluster-title { display: block; }
.storycluster-title, .storycluster-meta, .storycluster-also { unicode-bidi: isolate; margin-inline-end: .5em; }
"""


def api_page(openapi: dict) -> str:
    """The routes of an OpenAPI description as a self-contained page (what /docs shows: no script, no CDN)."""
    rows = []
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            doc = op.get("description") or op.get("summary") or ""
            rows.append(f"<tr><td><code>{escape(method.upper())}</code></td><td><code>{escape(path)}</code></td>"
                        f"<td>{escape(params)}</td><td>{escape(doc.splitlines()[0] if doc else '')}</td></tr>")
    title = escape(openapi.get("info", {}).get("title", "API"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} API</title><style>{_STYLE}
td {{ padding: .2rem .6rem; vertical-align: top; }}</style></head>
<body><h1>{title} API</h1><p>The machine-readable description: <a href="openapi.json">openapi.json</a>.</p>
<table><tr><th>method</th><th>path</th><th>parameters</th><th>what it does</th></tr>{"".join(rows)}</table>
</body></html>
"""


def article_page(article: dict, k: int = 10, root: str = "../") -> str:
    """A self-contained HTML page: the article, then its related list rendered by /widget.js (``root``: the
    server's root relative to the page's URL)."""
    lang = article.get("lang") or ""
    d = direction(lang)
    paragraphs = [p.strip() for p in article.get("text", "").split("\n") if p.strip()]
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs[:60])
    meta = " · ".join(escape(x) for x in (article.get("source"), article.get("published"), lang) if x)
    title = escape(headline(article.get("title"), article.get("text")) or article["id"])
    heading = "مقالات ذات صلة" if d == "rtl" and lang.startswith("ar") else "Related articles"
    return f"""<!doctype html>
<html lang="{escape(lang or 'und')}" dir="{d}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{_STYLE}</style></head>
<body>
<article dir="{d}"><h1>{title}</h1><div class="meta">{meta}</div><div class="body">{body}</div></article>
<aside><h2>{heading}</h2><div id="related" data-state="loading"></div>
<script src="{escape(root)}widget.js" data-article="{escape(article['id'])}" data-k="{int(k)}" data-target="related"></script>
</aside>
</body>
</html>
"""
