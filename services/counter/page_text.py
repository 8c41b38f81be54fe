"""The statistics page's words, Vietnamese (default) and English."""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("vi", "en")

TEXT: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Thống kê truy cập", "online": "Đang truy cập", "today": "Hôm nay", "this_month": "Tháng hiện tại",
        "last_month": "Tháng trước", "total": "Tổng lượt truy cập", "visits": "Lượt truy cập",
        "pageviews": "Lượt xem trang", "by_hour": "Theo giờ (hôm nay)", "by_day": "Theo ngày (tháng này)",
        "by_month": "Theo tháng (năm nay)", "hour_of_day": "Lượt truy cập theo giờ trong ngày",
        "weekday": "Lượt truy cập theo ngày trong tuần", "period": "Khoảng thời gian", "from": "Từ ngày",
        "to": "Đến ngày", "show": "Xem", "preset_today": "Hôm nay", "preset_month": "Tháng này",
        "preset_last_month": "Tháng trước", "preset_year": "Năm nay", "top": "Danh sách hàng đầu",
        "empty": "Chưa có số liệu", "csv": "Tải CSV", "legacy": "Số liệu cũ (trước khi chuyển)",
        "figures": "Số liệu chính", "charts": "Biểu đồ", "profile": "Phân bố", "key": "Mục",
        "pages": "Trang", "referrers": "Nguồn truy cập", "campaigns": "Chiến dịch", "browsers": "Trình duyệt",
        "os": "Hệ điều hành", "devices": "Thiết bị", "countries": "Quốc gia", "bots": "Máy tìm kiếm, bot",
        "hits": "Lượt ghé", "desktop": "Máy tính", "mobile": "Điện thoại", "tablet": "Máy tính bảng",
        "weekdays": "T2 T3 T4 T5 T6 T7 CN", "col_visits": "Truy cập", "col_pageviews": "Xem trang",
        "showing": "Số liệu từ {first} đến {last}",
    },
    "en": {
        "title": "Visit statistics", "online": "Online now", "today": "Today", "this_month": "This month",
        "last_month": "Last month", "total": "Total visits", "visits": "Visits", "pageviews": "Pageviews",
        "by_hour": "Per hour (today)", "by_day": "Per day (this month)", "by_month": "Per month (this year)",
        "hour_of_day": "Visits by hour of day", "weekday": "Visits by day of week", "period": "Period",
        "from": "From", "to": "To", "show": "Show", "preset_today": "Today", "preset_month": "This month",
        "preset_last_month": "Last month", "preset_year": "This year", "top": "Top lists", "empty": "No data yet",
        "csv": "Download CSV", "legacy": "Imported (before migration)", "figures": "Key figures",
        "charts": "Charts", "profile": "Distribution", "key": "Item", "pages": "Pages", "referrers": "Referrers",
        "campaigns": "Campaigns", "browsers": "Browsers", "os": "Operating systems", "devices": "Devices",
        "countries": "Countries", "bots": "Search engines and bots", "hits": "Hits", "desktop": "Desktop",
        "mobile": "Mobile", "tablet": "Tablet", "weekdays": "Mon Tue Wed Thu Fri Sat Sun",
        "col_visits": "Visits", "col_pageviews": "Pageviews",
        "showing": "Figures from {first} to {last}",
    },
}


def number_format(lang: str) -> Callable[[int], str]:
    """25.606 in Vietnamese, 25,606 in English."""
    if lang == "vi":
        return lambda value: f"{value:,}".replace(",", ".")
    return "{:,}".format


#: Axis units: nghìn (thousand) and triệu (million) in Vietnamese.
UNITS = {"vi": ("N", "Tr"), "en": ("k", "M")}


def compact_format(lang: str) -> Callable[[int], str]:
    """Short axis labels: 750 N / 1,5 Tr in Vietnamese, 750k / 1.5M in English."""
    thousand, million = UNITS[lang]
    point = "," if lang == "vi" else "."

    def compact(value: int) -> str:
        for size, unit in ((1_000_000, million), (1_000, thousand)):
            if value >= size:
                text = f"{value / size:.1f}".rstrip("0").rstrip(".").replace(".", point)
                return f"{text}{' ' if lang == 'vi' else ''}{unit}"
        return str(value)

    return compact
