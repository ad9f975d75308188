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
     filters, as the API's: [data-since="2024-09-01"] [data-max-age-days="30"] [data-past-only="true"]
       [data-lang="ar"] [data-exclude="id1,id2"] [data-exclude-source="a.example"] [data-per-source="1"]
       [data-diversity="0.3"]
     [data-link="https://site.example/news/{id}"]   where an entry without an http(s) url links ({id} filled in)
     [data-locale="ar"]                               labels and dates (default: the page's lang, else en)
     [data-label-also-in="..."] [data-label-versions="..."] [data-label-empty="..."] [data-label-error="..."]
     [data-label-loading="..."]                       own wording ({n}: the count)
     [data-style="none"]></script>                    no default stylesheet
   Markup: .storycluster-widget > ol.storycluster-related > li.storycluster-item > a.storycluster-title,
   span.storycluster-meta (span.storycluster-source, time.storycluster-date), details.storycluster-also
   (summary, ul > li > a|span); p.storycluster-empty, p.storycluster-error. CSS variables on .storycluster-widget:
   --sc-font, --sc-text, --sc-muted, --sc-accent, --sc-gap. Only http(s) URLs become links. */
(function () {
  "use strict";
  var RTL = ["ar", "fa", "he", "ur", "ps", "ku", "yi", "dv", "sd", "ug"];
  var LABELS = {
    en: {alsoIn: "also in {n} outlets", alsoIn1: "also in 1 outlet", versions: "+{n} other versions",
         versions1: "+1 other version", empty: "No related articles.", error: "Related articles are unavailable.",
         loading: "Loading related articles…"},
    fr: {alsoIn: "aussi dans {n} médias", alsoIn1: "aussi dans 1 média", versions: "+{n} autres versions",
         versions1: "+1 autre version", empty: "Aucun article lié.", error: "Articles liés indisponibles.",
         loading: "Chargement des articles liés…"},
    ar: {alsoIn: "أيضًا في {n} وسائل إعلام", alsoIn1: "أيضًا في وسيلة إعلام واحدة", versions: "+{n} نسخ أخرى",
         versions1: "+1 نسخة أخرى", empty: "لا توجد مقالات ذات صلة.", error: "المقالات ذات الصلة غير متاحة.",
         loading: "جارٍ تحميل المقالات ذات الصلة…"}
  };
  var STYLE = ".storycluster-widget{--sc-font:inherit;--sc-text:inherit;--sc-muted:#666;--sc-accent:#8a4b00;" +
    "--sc-gap:.6rem;font:var(--sc-font);color:var(--sc-text)}" +
    ".storycluster-widget ol.storycluster-related{list-style:none;margin:0;padding:0}" +
    ".storycluster-widget .storycluster-item{margin:0 0 var(--sc-gap);padding:0}" +
        // inline-block: a title in the other direction keeps its own order but sits at the page's start edge
    ".storycluster-widget .storycluster-title{display:inline-block;max-width:100%;font-weight:600;" +
    "unicode-bidi:isolate}" +
    ".storycluster-widget .storycluster-meta{display:block;color:var(--sc-muted);font-size:.875em}" +
    ".storycluster-widget .storycluster-meta>*{unicode-bidi:isolate}" +
    ".storycluster-widget .storycluster-meta>*+*::before{content:' · '}" +
    ".storycluster-widget details.storycluster-also{font-size:.875em;color:var(--sc-accent)}" +
    ".storycluster-widget details.storycluster-also summary{cursor:pointer;padding:.2em 0}" +
    ".storycluster-widget details.storycluster-also ul{margin:.2em 0;padding-inline-start:1.2em}" +
    ".storycluster-widget details.storycluster-also li{unicode-bidi:isolate}" +
    ".storycluster-widget .storycluster-empty,.storycluster-widget .storycluster-error{color:var(--sc-muted)}";
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
  var script = document.currentScript;
  if (!script) return;
  function attr(name) { return script.getAttribute("data-" + name); }
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var link = attr("link");
  var locale = attr("locale") || document.documentElement.lang || navigator.language || "en";
  var words = LABELS[String(locale).split("-")[0].toLowerCase()] || LABELS.en;
  function label(key, n) {
    var own = attr("label-" + key.replace(/[A-Z]/g, function (c) { return "-" + c.toLowerCase(); }).replace(/1$/, ""));
    var text = own || (n === 1 && words[key + "1"]) || words[key];
    return String(text).split("{n}").join(n == null ? "" : String(n));
  }
  var dates;
  try { dates = new Intl.DateTimeFormat(locale, {year: "numeric", month: "short", day: "numeric"}); }
  catch (e) { dates = new Intl.DateTimeFormat("en", {year: "numeric", month: "short", day: "numeric"}); }
  function dateOf(iso) {
    var t = el("time", "storycluster-date", iso);
    t.setAttribute("datetime", iso);
    var d = new Date(iso.length === 10 ? iso + "T00:00:00Z" : iso);
    if (!isNaN(d.getTime())) t.textContent = dates.format(d);
    t.dir = "auto";
    return t;
  }
  function hrefOf(id, url) {
    return webUrl(url) || (link ? link.split("{id}").join(encodeURIComponent(id))
                                : base + "/articles/" + encodeURIComponent(id));
  }
  function render(target, data) {
    var list = el("ol", "storycluster-related");
    data.related.forEach(function (item) {
      var li = el("li", "storycluster-item");
      li.setAttribute("data-id", item.id);
      var a = el("a", "storycluster-title", item.title || item.id);
      if (item.lang) a.lang = item.lang;
      a.dir = dirOf(item.lang);   // the title runs in its own direction; the list follows the page
      a.href = hrefOf(item.id, item.url);
      li.appendChild(a);
      var meta = el("span", "storycluster-meta");
      if (item.source) { var s = el("span", "storycluster-source", item.source); s.dir = "auto"; meta.appendChild(s); }
      if (item.published) meta.appendChild(dateOf(item.published));
      if (meta.childNodes.length) li.appendChild(meta);
      if (item.also_in && item.also_in.length) {
        var n = item.also_in.length, named = 0, seen = {};
        item.also_in.forEach(function (o) { if (o.source && !seen[o.source]) { seen[o.source] = 1; named++; } });
        var also = el("details", "storycluster-also");
        also.appendChild(el("summary", null, named === n ? label("alsoIn", n) : label("versions", n)));
        var ul = el("ul");
        item.also_in.forEach(function (o) {
          var row = el("li");
          var other = el("a", null, o.source || o.id);
          other.href = hrefOf(o.id, o.url);
          other.dir = "auto";
          row.appendChild(other);
          ul.appendChild(row);
        });
        also.appendChild(ul);
        li.appendChild(also);
      }
      list.appendChild(li);
    });
    target.textContent = "";
    if (!data.related.length) target.appendChild(el("p", "storycluster-empty", label("empty")));
    else target.appendChild(list);
    target.setAttribute("data-state", "ready");
    target.setAttribute("aria-busy", "false");
  }
  if (attr("style") !== "none" && !document.getElementById("storycluster-style")) {
    var style = el("style", null, STYLE);
    style.id = "storycluster-style";
    (document.head || document.documentElement).appendChild(style);
  }
  var id = attr("article");
  var target = attr("target") ? document.getElementById(attr("target")) : null;
  if (!target) { target = el("div"); script.parentNode.insertBefore(target, script.nextSibling); }
  target.classList.add("storycluster-widget");
  target.setAttribute("aria-live", "polite");
  if (!id) { target.setAttribute("data-state", "error"); return; }
  var params = ["k=" + encodeURIComponent(attr("k") || "5")];
  ["since", "max-age-days", "past-only", "lang", "exclude", "exclude-source", "per-source", "diversity"]
    .forEach(function (name) {
      var v = attr(name);
      if (v) params.push(name.replace(/-/g, "_") + "=" + encodeURIComponent(v));
    });
  target.setAttribute("data-state", "loading");
  target.setAttribute("aria-busy", "true");
  target.textContent = "";
  target.appendChild(el("p", "storycluster-loading", label("loading")));
  fetch(base + "/articles/" + encodeURIComponent(id) + "/related?" + params.join("&"))
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (data) { render(target, data); })
    .catch(function () {
      target.setAttribute("data-state", "error");
      target.setAttribute("aria-busy", "false");
      target.textContent = "";
      target.appendChild(el("p", "storycluster-error", label("error")));
    });
})();
"""

_STYLE = """
body { font: 16px/1.5 system-ui, 'Noto Naskh Arabic', 'Noto Sans Arabic', sans-serif; margin: 2rem auto;
       max-width: 46rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; line-height: 1.3; }
.meta { color: #666; font-size: .9rem; }
.body p { margin: .6rem 0; }
aside { border-top: 1px solid #ddd; margin-top: 2rem; }
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
