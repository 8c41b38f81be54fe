"""A realistic NukeViet 4 portal as SQL: the tables the importer reads, with NukeViet's
column types (two installed languages, so the counter table has vi_count and en_count),
and rows whose figures the tests know: total 28,564,413, last month 867,510, this month
802,647, today 25,606, with ``c_time/last`` at a chosen moment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAYS_OF_WEEK = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

SCHEMA = """
CREATE TABLE {p}_counter (
  c_type varchar(100) NOT NULL,
  c_val varchar(100) NOT NULL,
  last_update int(11) NOT NULL DEFAULT '0',
  c_count int(11) unsigned NOT NULL DEFAULT '0',
  vi_count int(11) unsigned NOT NULL DEFAULT '0',
  en_count int(11) unsigned NOT NULL DEFAULT '0',
  UNIQUE KEY c_type (c_type,c_val)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;
CREATE TABLE {p}_vi_referer_stats (
  host varchar(250) NOT NULL,
  total int(11) NOT NULL DEFAULT '0',
  month01 int(11) NOT NULL DEFAULT '0', month02 int(11) NOT NULL DEFAULT '0',
  month03 int(11) NOT NULL DEFAULT '0', month04 int(11) NOT NULL DEFAULT '0',
  month05 int(11) NOT NULL DEFAULT '0', month06 int(11) NOT NULL DEFAULT '0',
  month07 int(11) NOT NULL DEFAULT '0', month08 int(11) NOT NULL DEFAULT '0',
  month09 int(11) NOT NULL DEFAULT '0', month10 int(11) NOT NULL DEFAULT '0',
  month11 int(11) NOT NULL DEFAULT '0', month12 int(11) NOT NULL DEFAULT '0',
  last_update int(11) NOT NULL DEFAULT '0',
  UNIQUE KEY host (host),
  KEY total (total)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;
CREATE TABLE {p}_vi_news_cat (
  catid smallint(5) unsigned NOT NULL AUTO_INCREMENT,
  parentid smallint(5) unsigned NOT NULL DEFAULT '0',
  title varchar(250) NOT NULL,
  titlesite varchar(250) DEFAULT '',
  alias varchar(250) NOT NULL DEFAULT '',
  description text,
  weight smallint(5) unsigned NOT NULL DEFAULT '0',
  add_time int(11) unsigned NOT NULL DEFAULT '0',
  status smallint(4) NOT NULL DEFAULT '1',
  PRIMARY KEY (catid),
  UNIQUE KEY alias (alias)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;
CREATE TABLE {p}_vi_news_rows (
  id int(11) unsigned NOT NULL AUTO_INCREMENT,
  catid smallint(5) unsigned NOT NULL DEFAULT '0',
  listcatid varchar(255) NOT NULL DEFAULT '',
  admin_id mediumint(8) unsigned NOT NULL DEFAULT '0',
  author varchar(250) DEFAULT '',
  addtime int(11) unsigned NOT NULL DEFAULT '0',
  status tinyint(4) NOT NULL DEFAULT '1',
  title varchar(250) NOT NULL DEFAULT '',
  alias varchar(250) NOT NULL DEFAULT '',
  hometext text NOT NULL,
  homeimgfile varchar(255) DEFAULT '',
  hitstotal mediumint(8) unsigned NOT NULL DEFAULT '0',
  hitscm mediumint(8) unsigned NOT NULL DEFAULT '0',
  total_rating int(11) NOT NULL DEFAULT '0',
  PRIMARY KEY (id),
  KEY catid (catid)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;
CREATE TABLE {p}_sessions (
  session_id varchar(50) DEFAULT NULL,
  userid mediumint(8) unsigned NOT NULL DEFAULT '0',
  username varchar(100) NOT NULL,
  onl_time int(11) unsigned NOT NULL DEFAULT '0',
  UNIQUE KEY session_id (session_id)
) ENGINE=MEMORY;
"""

CATEGORIES = {1: "thoi-su", 2: "kinh-te", 3: "the-thao"}
BROWSERS = {"chrome": 15_000_000, "firefox": 2_100_000, "safari": 4_300_000, "edge": 900_000,
            "opera": 0, "Mobile": 5_200_000, "bots": 700_000, "Unknown": 364_413}
SYSTEMS = {"win": 11_000_000, "android": 9_000_000, "ios": 5_500_000, "mac": 1_800_000, "linux": 600_000,
           "Unspecified": 664_413}
COUNTRIES = {"VN": 26_000_000, "US": 1_200_000, "JP": 300_000, "SG": 150_000, "unkown": 914_413, "FR": 0}
BOTS = {"Googlebot": 480_000, "bingbot": 120_000, "Baiduspider": 75_000, "Zalo": 0}
REFERERS = {"www.google.com.vn": 4_100_000, "www.google.com": 1_300_000, "www.facebook.com": 2_250_000,
            "l.facebook.com": 640_000, "zalo.me": 310_000, "coccoc.com": 95_000}


@dataclass
class Portal:
    """The figures of the portal, dated by ``last`` (local time of ``c_time/last``)."""

    last: datetime = datetime(2026, 11, 26, 16, 55, tzinfo=ZONE)
    total: int = 28_564_413
    months: dict[int, int] = field(default_factory=lambda: {
        1: 701_233, 2: 655_870, 3: 790_044, 4: 812_300, 5: 845_120, 6: 799_999, 7: 830_450, 8: 851_002,
        9: 842_318, 10: 867_510, 11: 802_647})
    stale_months: dict[int, int] = field(default_factory=dict)  # rows after last's month (NukeViet zeroes them)
    today: int = 25_606
    articles: list[tuple[int, int, str, str, int]] = field(default_factory=lambda: [
        (1, 1, "khai-mac-ky-hop-thu-10", "Khai mạc kỳ họp thứ 10", 154_321),
        (2, 2, "gia-xang-giam-lan-thu-3", "Giá xăng giảm lần thứ 3 — \"liên tiếp\"", 98_765),
        (3, 3, "doi-tuyen-vao-ban-ket", "Đội tuyển vào bán kết: O'Brien\\nnói", 77_001),
        (4, 1, "bao-so-7-do-bo", "Bão số 7 đổ bộ; 100% (tạm) \\ \\\\ ;)", 12_002),
        (5, 2, "chua-co-luot-xem", "Chưa có lượt xem", 0),
        (6, 9, "chuyen-muc-da-xoa", "Chuyên mục đã xóa", 4_444),
    ])

    def days(self) -> dict[int, int]:
        """Days 1..last.day of last's month, summing to that month's figure, the last one ``today``."""
        month_total = self.months.get(self.last.month, 0)
        count = self.last.day
        if count == 1:
            return {1: month_total}
        rest = month_total - self.today
        each = rest // (count - 1)
        days = {d: each for d in range(1, count)}
        days[1] += rest - each * (count - 1)
        days[count] = self.today
        return days

    def counter_rows(self) -> list[tuple[str, str, int]]:
        year = self.last.year
        this_year = sum(self.months.values())
        rows: list[tuple[str, str, int]] = [
            ("c_time", "start", int(datetime(2019, 3, 4, 8, 0, tzinfo=ZONE).timestamp())),
            ("c_time", "last", int(self.last.timestamp())),
            ("total", "hits", self.total),
        ]
        earlier = list(range(2019, year))
        for index, y in enumerate(earlier):
            share = (self.total - this_year) // len(earlier)
            if index == len(earlier) - 1:
                share = self.total - this_year - share * (len(earlier) - 1)
            rows.append(("year", str(y), share))
        rows.append(("year", str(year), this_year))
        for number, name in enumerate(MONTHS, start=1):
            rows.append(("month", name, self.months.get(number, 0) if number <= self.last.month
                         else self.stale_months.get(number, 0)))
        days = self.days()
        rows += [("day", f"{d:02d}", days.get(d, 0)) for d in range(1, 32)]
        rows += [("dayofweek", name, 4_000_000 + i) for i, name in enumerate(DAYS_OF_WEEK)]
        rows += [("hour", f"{h:02d}", 1_000 + h * 10 if h <= self.last.hour else 0) for h in range(24)]
        rows += [("browser", k, v) for k, v in BROWSERS.items()]
        rows += [("os", k, v) for k, v in SYSTEMS.items()]
        rows += [("country", k, v) for k, v in COUNTRIES.items()]
        rows += [("bot", k, v) for k, v in BOTS.items()]
        return rows

    def sql(self, prefix: str = "nv4") -> str:
        stamp = int(self.last.timestamp())
        counter = ",\n".join(f"('{t}', '{v}', {stamp}, {n}, {n * 9 // 10}, {n - n * 9 // 10})"
                             for t, v, n in self.counter_rows())
        referers = ",\n".join(f"('{host}', {total}, {', '.join(str(total // 12) for _ in range(12))}, {stamp})"
                              for host, total in REFERERS.items())
        cats = ",\n".join(f"({c}, 0, '{a.replace('-', ' ').title()}', '', '{a}', 'Mô tả ''{a}''', {c}, {stamp}, 1)"
                          for c, a in CATEGORIES.items())
        rows = ",\n".join(
            f"({i}, {c}, '{c}', 1, 'Phóng viên', {stamp}, 1, '{t.replace(chr(39), chr(39) * 2)}', '{a}', "
            f"'<p>{t.replace(chr(39), chr(39) * 2)}</p>\\n<p>Dòng hai\\tcó tab</p>', '', {h}, 0, 0)"
            for i, c, a, t, h in self.articles)
        return SCHEMA.format(p=prefix) + f"""
INSERT INTO {prefix}_counter VALUES {counter};
INSERT INTO {prefix}_vi_referer_stats VALUES {referers};
INSERT INTO {prefix}_vi_news_cat VALUES {cats};
INSERT INTO {prefix}_vi_news_rows VALUES {rows};
INSERT INTO {prefix}_sessions VALUES ('abc', 0, 'guest', {stamp});
"""

    def article_views(self, template: str) -> dict[str, int]:
        return {template.format(cat=CATEGORIES[c], alias=a, id=i): h
                for i, c, a, _, h in self.articles if h > 0 and c in CATEGORIES}


OTHER_SCHEMA = """
CREATE TABLE wp_posts (ID bigint(20) unsigned NOT NULL AUTO_INCREMENT, post_title text NOT NULL,
  post_name varchar(200) NOT NULL DEFAULT '', PRIMARY KEY (ID)) ENGINE=InnoDB;
CREATE TABLE wp_options (option_id bigint(20) unsigned NOT NULL AUTO_INCREMENT, option_name varchar(191) NOT NULL,
  option_value longtext NOT NULL, PRIMARY KEY (option_id)) ENGINE=InnoDB;
INSERT INTO wp_posts VALUES (1, 'Hello world', 'hello-world');
INSERT INTO wp_options VALUES (1, 'siteurl', 'http://example.test');
"""

USERS = """
CREATE TABLE nv4_users (
  userid mediumint(8) unsigned NOT NULL AUTO_INCREMENT,
  group_id smallint(5) unsigned NOT NULL DEFAULT '0',
  username varchar(100) NOT NULL DEFAULT '',
  email varchar(100) NOT NULL DEFAULT '',
  checknum varchar(40) DEFAULT '',
  active tinyint(1) unsigned NOT NULL DEFAULT '0',
  PRIMARY KEY (userid),
  UNIQUE KEY username (username)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;
INSERT INTO nv4_users VALUES (7, 4, 'nguyenvana', 'a@portal.test', 'c0ffee00c0ffee00c0ffee00c0ffee00', 1),
  (8, 4, 'tranthib', 'b@portal.test', 'beef0000beef0000beef0000beef0000', 1);
INSERT INTO nv4_sessions VALUES ('s7a', 7, 'nguyenvana', 1), ('s7b', 7, 'nguyenvana', 1), ('s8', 8, 'tranthib', 1);
"""
