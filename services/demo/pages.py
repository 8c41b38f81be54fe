"""The demo portal's pages: small, Vietnamese-first HTML, no templates engine. Every
interpolated value is escaped. The pages carry no inline style or script at all: their
stylesheet is served as /demo.css and ``csp()`` is the strict Content-Security-Policy the
demo sends, so the demo also shows that both clients work under one."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

STYLE = """
*{box-sizing:border-box}body{margin:0;font:16px/1.6 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#0f172a;background:#f1f5f9}header{background:#9f1239;color:#fff}header .bar{max-width:64rem;margin:auto;
padding:1rem 1.25rem;display:flex;align-items:center;justify-content:space-between;gap:1rem}
header h1{font-size:1.25rem;margin:0}header a,header button{color:#fff;font:inherit;background:none;border:1px solid
rgba(255,255,255,.6);border-radius:.4rem;padding:.35rem .8rem;text-decoration:none;cursor:pointer}
nav{background:#be123c}nav ul{max-width:64rem;margin:auto;padding:.4rem 1.25rem;list-style:none;display:flex;
gap:1.25rem}
nav a{color:#fff;text-decoration:none;font-size:.95rem}main{max-width:64rem;margin:1.5rem auto;padding:0 1.25rem;
display:grid;grid-template-columns:1fr 18rem;gap:1.5rem}@media(max-width:48rem){main{grid-template-columns:1fr}}
article,aside section{background:#fff;border-radius:.6rem;padding:1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}
article h2{margin-top:0;color:#9f1239}aside h3{margin:0 0 .5rem;font-size:1rem;color:#9f1239;
border-bottom:2px solid #fecdd3;padding-bottom:.3rem}.note{background:#fff7ed;border-left:4px solid #f97316;
padding:.6rem .9rem;border-radius:.3rem}footer{text-align:center;color:#64748b;font-size:.85rem;padding:2rem 1rem}
header form{margin:0}aside section+section{margin-top:1rem}.badge{display:block;max-width:100%;height:auto}
#pulse-counter{--pulse-accent:#9f1239;--pulse-border:0;--pulse-padding:0}
.pulse-fallback{color:#64748b;font-size:.9rem;animation:pulse-fallback 0s 3s both}
@keyframes pulse-fallback{from{visibility:hidden}to{visibility:visible}}
"""


def csp(counter_url: str, session_url: str) -> str:
    """Scripts, styles and calls only from the demo itself and the two services."""
    services = f"{counter_url} {session_url}"
    return (f"default-src 'none'; script-src {services}; style-src 'self' {services}; "
            f"connect-src {services}; img-src 'self' {counter_url}; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'")


def page(title: str, body: str, header_action: str, scripts: str, sidebar: str) -> str:
    return f"""<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} — Cổng thông tin điện tử (demo)</title>
<link rel="stylesheet" href="/demo.css">
</head>
<body>
<header><div class="bar"><h1>Cổng thông tin điện tử <small>(demo portal-pulse)</small></h1>
{header_action}</div></header>
<nav aria-label="Chuyên mục"><ul><li><a href="/">Trang chủ</a></li><li><a href="/">Tin tức</a></li>
<li><a href="/">Thủ tục hành chính</a></li><li><a href="/">Liên hệ</a></li></ul></nav>
<main>
<article>{body}</article>
<aside>{sidebar}</aside>
</main>
<footer>portal-pulse — bộ đếm truy cập và duy trì phiên đăng nhập. Đây là trang minh hoạ.</footer>
{scripts}
</body>
</html>
"""


def counter_block(counter_url: str, site: str, member: bool, path: str) -> tuple[str, str]:
    """The counter block (its container, with a fallback shown only if the script never
    runs), the no-script pixel and badge, and the widget's script tag."""
    member_attr = ' data-member="1"' if member else ""
    base = escape(counter_url)
    pixel = f"{base}/v1/hit.gif?site={escape(quote(site))}&amp;path={escape(quote(path, safe=''))}"
    block = (
        '<section><h3>Thống kê truy cập</h3><div id="pulse-counter">'
        '<span class="pulse-fallback">Thống kê truy cập tạm thời chưa hiển thị được.</span></div>'
        f'<noscript><img src="{pixel}" alt="" width="1" height="1"></noscript></section>'
        '<section><h3>Ảnh thống kê (không cần JavaScript)</h3>'
        f'<img class="badge" src="{base}/v1/badge.svg?site={escape(quote(site))}&amp;lang=vi" '
        'alt="Thống kê truy cập" width="240" height="137"></section>'
    )
    script = (
        f'<script src="{base}/widget.js" data-site="{escape(site)}" data-lang="vi" data-breakdown="1"'
        f"{member_attr} async></script>"
    )
    return block, script


def home(counter_url: str, site: str) -> str:
    block, script = counter_block(counter_url, site, member=False, path="/")
    body = """<h2>Chào mừng bạn đến với cổng thông tin</h2>
<p>Trang này minh hoạ hai dịch vụ của portal-pulse: <strong>bộ đếm truy cập</strong> ở cột bên phải và
<strong>hộp thoại duy trì đăng nhập</strong> khi người dùng đã đăng nhập nhưng không thao tác.</p>
<p class="note">Bấm <a href="/signed-in">Đăng nhập (demo)</a> rồi để yên trang: sau thời gian chờ, hộp thoại
hiện ra với đồng hồ đếm ngược; mở thêm tab để thấy mọi tab cùng đồng bộ.</p>"""
    action = '<a href="/signed-in">Đăng nhập (demo) · Sign in (demo)</a>'
    return page("Trang chủ", body, action, script, block)


def signed_in(counter_url: str, session_url: str, site: str, session_id: str, idle: int, prompt: int) -> str:
    block, counter_script = counter_block(counter_url, site, member=True, path="/signed-in")
    body = f"""<h2>Bạn đã đăng nhập</h2>
<p>Phiên đăng nhập do máy chủ quản lý: sau <strong>{idle - prompt} giây</strong> không thao tác, hộp thoại
nhắc hiện ra và đếm ngược <strong>{prompt} giây</strong>. Bấm vào hộp thoại để duy trì đăng nhập; nếu không,
phiên kết thúc ở mọi tab.</p>
<p class="note">Di chuột, cuộn trang hay gõ phím đều được tính là đang sử dụng (báo về máy chủ mỗi một
phần ba thời gian hoạt động, tối đa 30 giây một lần). Khi hộp thoại đã hiện, chỉ cú bấm mới giữ phiên; đang
gõ phím thì hộp thoại không lấy mất con trỏ (phím Tab đưa tới nút giữ phiên).</p>
<p><label for="note-field">Thử gõ ở đây:</label> <input id="note-field" autocomplete="off"></p>"""
    action = (
        '<form method="post" action="/logout">'
        '<button type="submit">Đăng xuất</button></form>'
    )
    scripts = (
        f'{counter_script}\n<script src="{escape(session_url)}/session.js" data-session="{escape(session_id)}"'
        ' data-lang="vi" data-logout-url="/signed-out" async></script>'
    )
    return page("Đã đăng nhập", body, action, scripts, block)


def signed_out(counter_url: str, site: str) -> str:
    block, script = counter_block(counter_url, site, member=False, path="/signed-out")
    body = """<h2>Bạn đã đăng xuất</h2><p>Phiên đăng nhập đã kết thúc (signed out).</p>
<p><a href="/signed-in">Đăng nhập lại (demo)</a></p>"""
    return page("Đã đăng xuất", body, '<a href="/">Trang chủ</a>', script, block)
