#!/usr/bin/env python3
"""Generates the geometry of forms/*.toml.

The TOML files are the source of truth and are committed; this script only
saves hand-computing millimetres. Re-run it after changing a layout rule, then
review the diff. Text widths assume IPAGothic (fixed pitch: full-width
characters are 1 em, ASCII 0.5 em), which is what `render` draws with.
"""

import os

PAGE_W, PAGE_H = 210.0, 297.0
MARK = 6.0
MARK_AT = 12.0
CELL = 3.0
STRIP_X = (PAGE_W - 16 * CELL) / 2
STRIP_Y = MARK_AT - CELL / 2

BOX_W, BOX_H, BOX_GAP = 5.5, 7.5, 1.5
# Room for a group suffix (年/月/日) with 2 mm clear on both sides.
SUFFIX_SIZE = 3.5
GROUP_GAP = 2.2 + SUFFIX_SIZE + 2.2
CHECK = 4.0
CLEAR = 2.2  # a little over the 2 mm the OCR guidelines ask for
LABEL = 3.5
OPT_TEXT = 3.3
OPT_SPACING = 5.0
OPT_LINE = 6.8
RIGHT = 194.0
LEFT = 15.0


def tw(text, size):
    return sum(size * (0.5 if ord(c) < 0x80 else 1.0) for c in text) if text else 0.0


def q(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def r(v):
    return round(v, 2)


class Side:
    def __init__(self, sid, code, read):
        self.id, self.code, self.read = sid, code, read
        self.texts = []
        self.fields = []
        self.relations = []

    def text(self, text, x, y, size=LABEL):
        self.texts.append((text, r(x), r(y), size))

    def toml(self):
        out = ["", "[[sides]]", f"id = {q(self.id)}", f"code = {self.code}",
               f"read = {'true' if self.read else 'false'}"]
        for t, x, y, s in self.texts:
            out += ["", "[[sides.texts]]", f"text = {q(t)}", f"x_mm = {x}", f"y_mm = {y}",
                    f"size_mm = {s}"]
        for f in self.fields:
            out += ["", "[[sides.fields]]"]
            for k in ("id", "label", "kind"):
                out.append(f"{k} = {q(f[k])}")
            out.append(f"label_at_mm = [{r(f['label_at'][0])}, {r(f['label_at'][1])}]")
            for k in ("era", "check"):
                if k in f:
                    out.append(f"{k} = {q(f[k])}")
            if "range" in f:
                out.append(f"range = [{f['range'][0]}, {f['range'][1]}]")
            if f.get("sensitive"):
                out.append("sensitive = true")
            if f.get("required") is False:
                out.append("required = false")
            if "min_confidence" in f:
                out.append(f"min_confidence = {f['min_confidence']}")
            if f.get("not_after_receipt"):
                out.append("not_after_receipt = true")
            if "boxes" in f:
                b = f["boxes"]
                out += ["", "[sides.fields.boxes]", f"x_mm = {r(b['x'])}", f"y_mm = {r(b['y'])}",
                        f"w_mm = {BOX_W}", f"h_mm = {BOX_H}", f"gap_mm = {BOX_GAP}",
                        f"groups = [{', '.join(str(g) for g in b['groups'])}]"]
                if len(b["groups"]) > 1 or b.get("suffixes"):
                    out.append(f"group_gap_mm = {r(GROUP_GAP)}")
                if b.get("suffixes"):
                    out.append(f"group_suffixes = [{', '.join(q(s) for s in b['suffixes'])}]")
            for o in f.get("options", []):
                out += ["", "[[sides.fields.options]]", f"label = {q(o[0])}", f"code = {q(o[1])}",
                        f"x_mm = {r(o[2])}", f"y_mm = {r(o[3])}", f"size_mm = {CHECK}"]
        for why, earlier, later, weeks, days in self.relations:
            out += ["", f"# {why}", "[[sides.relations]]", f"earlier = {q(earlier)}",
                    f"later = {q(later)}"]
            if weeks:
                out.append(f"plus_weeks_of = {q(weeks)}")
            out.append(f"days = [{days[0]}, {days[1]}]")
        return out


def row_width(groups, suffixes):
    n = sum(groups)
    w = n * BOX_W + (n - len(groups)) * BOX_GAP + (len(groups) - 1) * GROUP_GAP
    if suffixes:
        w += CLEAR + SUFFIX_SIZE
    return w


# Digit fields nothing cross-checks (no register match, no check digit) need
# every cell surer: at the shipped 0.98 a misread cell in them would reach the
# CSV. 0.9995 is the lowest listed threshold with no error among accepted cells
# on the validation fold (32,568 cells) with the five-member reader, and it let
# no misread through on two sets of validation pages of make bench-pages (seeds
# 777, 779). With the reader before, it let one misread date through there
# (at 0.99976), so 0.9998 was used then (models/README.md).
UNCHECKED = 0.9995


def digits(side, fid, label, y, x, n, suffix=None, **extra):
    f = {"id": fid, "label": label, "kind": "digits", "label_at": (LEFT, y + (BOX_H - LABEL) / 2),
         "boxes": {"x": x, "y": y, "groups": [n], "suffixes": [suffix] if suffix else []}}
    f.update(extra)
    side.fields.append(f)
    return x + row_width([n], f["boxes"]["suffixes"])


def date(side, fid, label, y, x, era=None, era_options=False, **extra):
    f = {"id": fid, "label": label, "kind": "date", "label_at": (LEFT, y + (BOX_H - LABEL) / 2)}
    f.update(extra)
    if era:
        # render prints the era itself, right-aligned 3 mm before the boxes
        f["era"] = era
        x += tw("令和", LABEL) + 3.0
    if era_options:
        opts = []
        cy = y + (BOX_H - CHECK) / 2
        for lab, code in (("昭和", "showa"), ("平成", "heisei"), ("令和", "reiwa")):
            opts.append((lab, code, x, cy))
            x += CHECK + CLEAR + tw(lab, OPT_TEXT) + 4.0
        f["options"] = opts
        x += 1.0
    f["boxes"] = {"x": x, "y": y, "groups": [2, 2, 2], "suffixes": ["年", "月", "日"]}
    side.fields.append(f)
    return x + row_width([2, 2, 2], ["年"])


def flow(options, x0, y0, right=RIGHT):
    """Lays checkboxes left to right, wrapping; returns placed options and the last box top."""
    placed, x, y = [], x0, y0
    for i, lab in enumerate(options):
        w = CHECK + CLEAR + tw(lab, OPT_TEXT)
        if x > x0 and x + w > right:
            x, y = x0, y + OPT_LINE
        placed.append((lab, str(i + 1), x, y))
        x += w + OPT_SPACING
    return placed, y


def opts_width(options):
    return sum(CHECK + CLEAR + tw(o, OPT_TEXT) for o in options) + OPT_SPACING * (len(options) - 1)


def choice(side, fid, label, kind, options, y, opt_x, label_x=LEFT, number=None, label_size=LABEL):
    """A choice question whose options sit on the label's line when they fit.

    Returns the y where the next field may start (2 mm clear below the boxes).
    """
    if number:
        side.text(number, LEFT, y + (CHECK - label_size) / 2, label_size)
    label_end = label_x + tw(label, label_size)
    if label_end + 6.0 <= opt_x and opt_x + opts_width(options) <= RIGHT:
        placed, last = flow(options, opt_x, y)
        label_y = y + (CHECK - label_size) / 2
    else:
        label_y = y
        placed, last = flow(options, label_x + 5.0, y + label_size + CLEAR + 0.3)
    side.fields.append({"id": fid, "label": label, "kind": kind, "label_at": (label_x, label_y),
                        "options": placed})
    return last + CHECK + CLEAR + 2.6


def marks_and_header(title):
    c = [[MARK_AT, MARK_AT], [PAGE_W - MARK_AT, MARK_AT], [MARK_AT, PAGE_H - MARK_AT],
         [PAGE_W - MARK_AT, PAGE_H - MARK_AT]]
    return [
        f"title = {q(title)}",
        'version = "1"',
        "",
        "[page]",
        f"width_mm = {PAGE_W}",
        f"height_mm = {PAGE_H}",
        "",
        "[marks]",
        f"size_mm = {MARK}",
        "centres_mm = [" + ", ".join(f"[{a}, {b}]" for a, b in c) + "]",
        "",
        "[id_code]",
        f"x_mm = {STRIP_X}",
        f"y_mm = {STRIP_Y}",
        f"cell_mm = {CELL}",
        "",
        "[defaults]",
        "digit_confidence = 0.98",
        "checkbox_confidence = 0.8",
        "checkbox_empty_ink = 0.04",
        "checkbox_marked_ink = 0.10",
        "# Doubtful digit cells pass when each is at least this sure and outside evidence",
        "# vouches for the value: the register (atena_no + birth_date), the check digit,",
        "# a date's calendar, a range, the side's relations. Picked on validation-fold pages",
        "# (make bench-pages with BENCH_DIGITS=validation): no wrong record from 0.3 to 0.9;",
        "# re-checked with the reader of 2026-12-02: 0.3 and 0.5 validate 132 of 782, 0.7 123,",
        "# none wrong.",
        "vouch_cell_floor = 0.5",
        "vouch_max_rivals = 0.001",
        "# Dates and weeks vouched for by their own rules and relations are held to the",
        "# same limit (rules_max_rivals unset): 0.005 let no wrong date through on 2,000",
        "# validation pages but three on 1,000 evaluation pages (forms/README.md).",
    ]


def output(columns):
    out = ["", "[output]", 'encoding = "cp932"', 'line_ending = "crlf"', 'date_format = "%Y%m%d"',
           'multi_separator = ";"']
    for h, v in columns:
        out += ["", "[[output.columns]]", f"header = {q(h)}", f"value = {q(v)}"]
    return out


def pregnancy():
    s = Side("pregnancy-notification", 1, True)
    s.text("（あて先）　〇〇市長", LEFT, 30.0)
    s.text("次のとおり妊娠を届け出ます。数字欄には、1マスに1字ずつ算用数字で記入してください。", LEFT, 35.5, 3.0)
    y = 44.0
    # Dates written on or before the day they are handed in: none may be later
    # than the day todoke takes the scan in (the due date looks ahead).
    date(s, "notified_on", "届出日", y, 62.0, era="reiwa", min_confidence=UNCHECKED,
         not_after_receipt=True)
    y += 13.0
    end = digits(s, "atena_no", "宛名番号", y, 62.0, 10)
    s.text("※窓口記入欄", end + 4.0, y + (BOX_H - 3.0) / 2, 3.0)
    y += 13.0
    s.text("■ 妊婦について", LEFT, y, 4.0)
    y += 7.5
    date(s, "birth_date", "生年月日（妊婦）", y, 62.0, era_options=True, not_after_receipt=True)
    y += 13.0
    end = digits(s, "my_number", "個人番号", y, 62.0, 12, check="my_number", sensitive=True)
    s.text("（12桁）", end + 3.0, y + (BOX_H - 3.0) / 2, 3.0)
    y += 13.0
    digits(s, "gestation_weeks", "妊娠週数", y, 62.0, 2, suffix="週", range=(4, 42),
           min_confidence=UNCHECKED)
    s.text("（届出日現在）", 88.0, y + (BOX_H - 3.0) / 2, 3.0)
    y += 13.0
    date(s, "due_date", "出産予定日", y, 62.0, era="reiwa", min_confidence=UNCHECKED)
    s.relations.append((
        "The due date is 280 days (40 weeks) after the last period, and the weeks are those gone "
        "on the notification day: due - notified + 7 x weeks = 280, give or take a week for "
        "rounding and for when the weeks were counted.",
        "notified_on", "due_date", "gestation_weeks", (273, 287)))
    y += 13.0
    y = choice(s, "fetus_count", "胎児数", "single", ["単胎", "多胎"], y, 62.0)
    y = choice(s, "first_pregnancy", "初産・経産", "single", ["初産", "経産"], y, 62.0)
    y = choice(s, "occupation", "職業", "single",
               ["会社員", "自営業", "パート・アルバイト", "学生", "無職", "その他"], y, 62.0)
    y += 1.5
    s.text("■ アンケート（あてはまるものの□にレ印をつけてください）", LEFT, y, 4.0)
    y += 7.5
    qs = [
        ("q_feeling", "妊娠がわかった時の気持ち", "single",
         ["うれしい", "予想外だったがうれしい", "予想外で困った", "何とも思わない"]),
        ("q_smoking", "喫煙", "single", ["吸わない", "やめた", "吸っている"]),
        ("q_household_smoking", "同居者の喫煙", "single", ["なし", "あり"]),
        ("q_drinking", "飲酒", "single", ["飲まない", "やめた", "飲んでいる"]),
        ("q_consult", "相談できる人", "single", ["いる", "いない"]),
        ("q_worries", "心配なこと（あてはまるものすべて）", "multi",
         ["経済的なこと", "体調", "育児", "仕事", "その他"]),
    ]
    for i, (fid, label, kind, opts) in enumerate(qs):
        y = choice(s, fid, label, kind, opts, y, 88.0, label_x=24.0, number=f"問{i + 1}")
    # "All that apply" with no "none" box: no tick is itself an answer.
    next(f for f in s.fields if f["id"] == "q_worries")["required"] = False
    y += 2.0
    s.text("※個人番号は、本人確認書類により窓口で確認します。", LEFT, y, 3.0)
    # Office-use block, printed only: staff note it by hand, nothing reads it.
    y = max(y + 12.0, 246.0)
    s.text("（市記入欄）", LEFT, y, 3.5)
    s.text("受付日　令和　　年　　月　　日　　受付窓口　□ 本庁　□ さくら支所", LEFT + 3, y + 7.0, 3.2)
    s.text("母子健康手帳交付番号［　　　　　　　　］　　担当者［　　　　　　　］", LEFT + 3, y + 14.0, 3.2)
    assert y + 14.0 < PAGE_H - 22, y
    lines = ['id = "pregnancy-notification"', 'tally_date = "notified_on"'] + marks_and_header("妊娠届出書") + s.toml()
    cols = [("ファイル名", "@source"), ("ページ", "@page"), ("受付窓口", "@branch")]
    heads = {"notified_on": "届出日", "atena_no": "宛名番号", "birth_date": "生年月日",
             "my_number": "個人番号", "gestation_weeks": "妊娠週数", "due_date": "出産予定日",
             "fetus_count": "胎児数", "first_pregnancy": "初産経産", "occupation": "職業",
             "q_feeling": "妊娠時の気持ち", "q_smoking": "喫煙", "q_household_smoking": "同居者の喫煙",
             "q_drinking": "飲酒", "q_consult": "相談者", "q_worries": "心配なこと"}
    cols += [(heads[f["id"]], f["id"]) for f in s.fields]
    cols.append(("修正有無", "@corrected"))
    cols.append(("確認者", "@reviewer"))
    return lines + output(cols)


def infant():
    front = Side("infant-checkup-front", 2, False)
    fs = 3.5
    front.text("（受診者記入欄）", LEFT, 28.0, 4.0)
    rows = [("お子さんの氏名", "＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿", "男 ・ 女"),
            ("生年月日", "令和　　　年　　　月　　　日生", ""),
            ("保護者の氏名", "＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿", ""),
            ("住所", "＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿＿", "")]
    y = 36.0
    for a, b, c in rows:
        front.text(a, LEFT + 3, y, fs)
        front.text(b, 60.0, y, fs)
        if c:
            front.text(c, 160.0, y, fs)
        y += 9.0
    y += 3.0
    front.text("（医療機関記入欄）　※以下は医師が記入してください", LEFT, y, 4.0)
    y += 8.0
    doc = [
        ("受診日", "令和　　　年　　　月　　　日（生後　　か月）"),
        ("身体計測", "身長［　　　　．　］cm　体重［　　　　　］g"),
        ("", "胸囲［　　　　．　］cm　頭囲［　　　　．　］cm"),
        ("栄養状態", "□ 良　　□ 要指導"),
        ("発育・発達", "□ 首のすわり　□ 追視　□ 寝返り　□ おすわり　□ 音への反応"),
        ("診察所見", "□ 異常なし　□ 皮膚　□ 股関節　□ 心雑音　□ 斜頸　□ その他"),
        ("", "所見の内容［　　　　　　　　　　　　　　　　　　　　　　　　　］"),
        ("判定", "□ 1 異常なし　□ 2 要経過観察　□ 3 要精密検査　□ 4 要治療"),
        ("指導事項", "□ 栄養　□ 生活　□ 予防接種　□ 事故防止　□ その他"),
        ("精密検査", "□ 要（紹介先：　　　　　　　　　　　）　□ 不要"),
    ]
    for a, b in doc:
        if a:
            front.text(a, LEFT + 3, y, fs)
        front.text(b, 48.0, y, fs)
        y += 9.5
    y += 4.0
    front.text("医療機関名［　　　　　　　　　　　　　　　　　　　　］", LEFT + 3, y, fs)
    y += 10.0
    front.text("医師氏名　［　　　　　　　　　　　　　　　　　　　　］", LEFT + 3, y, fs)
    y += 12.0
    front.text("※この受診票は、県内の契約医療機関で1回に限り使用できます。裏面のアンケートにもご記入ください。", LEFT, y, 3.0)
    y += 5.0
    front.text("※受診後、医療機関から市へ送付されます。", LEFT, y, 3.0)

    back = Side("infant-checkup-back", 3, True)
    back.text("乳児健康診査アンケート（保護者の方がご記入ください）", LEFT, 29.0, 4.0)
    back.text("数字欄には1マスに1字ずつ算用数字で、質問はあてはまるものの□にレ印をつけてください。", LEFT, 35.0, 3.0)
    y = 42.0
    end = digits(back, "atena_no", "宛名番号（お子さん）", y, 62.0, 10)
    back.text("※窓口記入欄", end + 4.0, y + (BOX_H - 3.0) / 2, 3.0)
    y += 13.0
    date(back, "birth_date", "生年月日（お子さん）", y, 62.0, era="reiwa", not_after_receipt=True)
    y += 13.0
    date(back, "checkup_date", "受診日", y, 62.0, era="reiwa", min_confidence=UNCHECKED,
         not_after_receipt=True)
    back.relations.append((
        "An infant check-up is in the first year of life; a month's grace for a late visit.",
        "birth_date", "checkup_date", None, (0, 400)))
    y += 13.0
    qs = [
        ("q_continue_raising", "この地域で、今後も子育てをしていきたいですか", "single",
         ["そう思う", "どちらかといえばそう思う", "どちらかといえばそう思わない", "そう思わない"]),
        ("q_postnatal_care", "産後1か月程度、助産師や保健師等からの指導・ケアは十分に受けられましたか", "single",
         ["はい", "いいえ", "どちらとも言えない"]),
        ("q_smoking_pregnancy", "妊娠中、お母さんは喫煙をしていましたか", "single", ["なし", "あり"]),
        ("q_mother_smoking", "現在、お母さんは喫煙をしていますか", "single", ["なし", "あり"]),
        ("q_father_smoking", "現在、お父さんは喫煙をしていますか", "single", ["なし", "あり"]),
        ("q_drinking_pregnancy", "妊娠中、お母さんは飲酒をしていましたか", "single", ["なし", "あり"]),
        ("q_relaxed_time", "ゆったりとした気分でお子さんと過ごせる時間がありますか", "single",
         ["はい", "いいえ", "何ともいえない"]),
        ("q_difficulty", "育てにくさを感じていますか", "single", ["いつも感じる", "時々感じる", "感じない"]),
        ("q_know_solution", "育てにくさを解決する方法を知っていますか", "single", ["はい", "いいえ"]),
        ("q_father_involvement", "お父さんは育児をしていますか", "single",
         ["よくやっている", "時々やっている", "ほとんどしない", "何ともいえない"]),
        ("q_sbs_known", "乳幼児揺さぶられ症候群を知っていますか", "single", ["はい", "いいえ"]),
        ("q_household_events", "この数か月の間に家庭で次のことがありましたか（あてはまるものすべて）", "multi",
         ["しつけのし過ぎ", "感情的に叩いた", "乳幼児だけを家に残して外出", "長時間食事を与えなかった",
          "感情的な言葉で怒鳴った", "いずれにも該当しない"]),
        ("q_economy", "現在の暮らしの経済的状況", "single",
         ["大変ゆとりがある", "ややゆとりがある", "普通", "やや苦しい", "大変苦しい"]),
    ]
    for i, (fid, label, kind, opts) in enumerate(qs):
        y = choice(back, fid, label, kind, opts, y, 128.0, label_x=24.0, number=f"問{i + 1}")
    y += 1.0
    back.text("ご協力ありがとうございました。", LEFT, y, 3.0)
    assert y < PAGE_H - 22, y

    # Asked only of those who feel difficulty (問8 1 or 2): others skip it.
    next(f for f in back.fields if f["id"] == "q_know_solution")["required"] = False
    lines = ['id = "infant-checkup"', 'tally_date = "checkup_date"'] + marks_and_header("乳児一般健康診査受診票") + front.toml() + back.toml()
    heads = {"atena_no": "宛名番号", "birth_date": "生年月日", "checkup_date": "受診日",
             "q_continue_raising": "子育て継続意向", "q_postnatal_care": "産後ケア",
             "q_smoking_pregnancy": "妊娠中の喫煙", "q_mother_smoking": "母の喫煙",
             "q_father_smoking": "父の喫煙", "q_drinking_pregnancy": "妊娠中の飲酒",
             "q_relaxed_time": "ゆったりした時間", "q_difficulty": "育てにくさ",
             "q_know_solution": "解決方法の認知", "q_father_involvement": "父の育児",
             "q_sbs_known": "揺さぶられ症候群の認知", "q_household_events": "家庭での出来事",
             "q_economy": "経済的状況"}
    cols = [("ファイル名", "@source"), ("ページ", "@page"), ("受付窓口", "@branch")]
    cols += [(heads[f["id"]], f["id"]) for f in back.fields]
    cols.append(("修正有無", "@corrected"))
    cols.append(("確認者", "@reviewer"))
    return lines + output(cols) + INFANT_INDICATORS


# The national survey's definitions (乳幼児健康診査問診回答状況, 健やか親子21
# (第2次)); forms/README.md cites the source of each. Codes are option codes.
INFANT_INDICATORS = """
[[indicators]]
name = "この地域で子育てをしたいと思う親の割合"
field = "q_continue_raising"
numerator = ["1", "2"]

[[indicators]]
name = "妊娠・出産について満足している者の割合"
field = "q_postnatal_care"
numerator = ["1"]

[[indicators]]
name = "妊娠中の妊婦の喫煙率"
field = "q_smoking_pregnancy"
numerator = ["2"]

[[indicators]]
name = "ゆったりとした気分で子どもと過ごせる時間がある母親の割合"
field = "q_relaxed_time"
numerator = ["1"]

[[indicators]]
name = "育てにくさを感じる親の割合"
field = "q_difficulty"
numerator = ["1", "2"]

# Counted among those who feel difficulty always or sometimes, whether or
# not they answered this question (the sheet's ⑧ / ⑤).
[[indicators]]
name = "育てにくさを感じたときに対処できる親の割合"
field = "q_know_solution"
numerator = ["1"]
condition = { field = "q_difficulty", options = ["1", "2"] }""".split("\n")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    head = "# Generated by forms/gen_templates.py, then committed; see forms/README.md.\n"
    for name, lines in (("pregnancy-notification", pregnancy()), ("infant-checkup", infant())):
        with open(os.path.join(here, name + ".toml"), "w") as f:
            f.write(head + "\n".join(lines) + "\n")
