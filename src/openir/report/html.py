"""Self-contained HTML: pictures embedded as data URIs, styles inline, no CDN.

Hospital networks are often offline, so every page OpenIR writes opens from a USB stick.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans SC',sans-serif;margin:0;
 background:#f5f6f8;color:#1d2430}
header{background:#12344d;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.8}
main{max-width:1200px;margin:0 auto;padding:18px 28px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);margin:18px 0;padding:16px 20px}
h2{font-size:18px;margin:0 0 10px;color:#12344d}
table{border-collapse:collapse;font-size:13px} td,th{padding:4px 10px;border-bottom:1px solid #e3e6ea;text-align:left}
th{background:#eef1f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border-radius:4px}
.ok{color:#1a7f37;font-weight:600}.warn{color:#b35900;font-weight:600}.bad{color:#c0262d;font-weight:600}
footer{color:#6b7480;font-size:12px;padding:8px 28px 24px}
"""


def esc(value: object) -> str:
    return html.escape(str(value))


def img_tag(png: bytes, alt: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; columns whose index is in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if n in numeric else f"<td>{esc(c)}</td>" for n, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]], footer: str = "") -> str:
    """A whole page: header, one <section> per (title, html fragment), footer."""
    parts = [f"<section><h2>{esc(t)}</h2>{frag}</section>" for t, frag in sections]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<main>{''.join(parts)}</main><footer>{esc(footer)}</footer></body></html>"
    )
