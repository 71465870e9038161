"""The report as one A4 PDF to hand in: the page's blocks (`study.reporting.page`) written as a
Typst source, `report.typ`, and compiled into `report.pdf`.

Figures and tables are numbered and captioned; the title and verdict come first, then the results
and the figures, and last the warnings, caveats and set-up. Typst, not LaTeX: it installs from PyPI
as one wheel with its fonts included (no TeX distribution), and compiles the quick study's report
(9 figures, 4 tables, 10 pages) in 0.35-0.55 s on 2 busy cores. `report.typ` is written beside the
PDF so a student can edit it (their name goes on its commented `author:` line) and recompile it in
the report's folder with `python -c "import typst; typst.compile('report.typ', output='report.pdf')"`.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pandas as pd
import typst

from study.reporting.figures import PRINT_SCALE
from study.reporting.load import ReportError


LATE_SECTIONS = ("Warnings", "Fixed settings", "Set-up")  # h2 headings the PDF moves after the figures
TEXT_WIDTH_CM, MAX_FIGURE_CM = 16.6, 12.0  # A4 less 2.2 cm margins; a near-square figure stays off a full page
ZWSP = "\u200b"  # a break opportunity: long names and paths may wrap there instead of running off the page
LONG = 30  # characters without a space: where a name or path gets break opportunities
WIDE = 10  # columns: a wider table is turned on its side (if it has fewer rows) or set smaller
LONG_TABLE = 30  # rows: a longer table may break across pages (a shorter one stays beside its caption)

PREAMBLE = r"""// The PDF of this report, written by `study report` (which overwrites it when re-run). Edit it, then
// recompile in this folder (figures are read from figures/):
//   python -c "import typst; typst.compile('report.typ', output='report.pdf')"
#let info = (
  title: {title},
  // author: "Your Name",
)

#set document(title: info.title, author: info.at("author", default: ()))
#set page(paper: "a4", margin: (x: 2.2cm, y: 2.4cm), numbering: "1 / 1")
#set text(size: 10pt, lang: "en")
#set par(justify: true)
#set heading(numbering: "1.1")
#show heading: set block(above: 1.5em, below: 0.9em)
#show figure: set block(above: 1.4em, below: 1.4em)
#show figure.where(kind: table): set figure.caption(position: top)
#show figure.caption: set text(size: 9pt)
#show figure.caption: set par(justify: true)
#show figure.caption: it => block(width: 100%, align(start, it))

#align(center)[
  #text(size: 17pt, weight: "bold", info.title.replace("_", "_\u{200b}"))
  #if "author" in info [ \ #text(size: 12pt, info.author) ]
]
#v(0.6em)
"""


def escape(text: str) -> str:
    """Plain text as Typst markup that shows exactly that text: every character Typst reads as markup
    escaped (`//` would open a comment, `$` math, `#` code, `-`, `+`, `=` at a line's start a list or
    heading, `1.` at a line's start a numbered list)."""
    text = re.sub(r"([\\#$*_@<>\[\]`~/\-=+])", r"\\\1", str(text))
    return re.sub(r"^(\s*\d+)\.", r"\1\\.", text, flags=re.MULTILINE)


def string(text: str) -> str:
    """Text as a Typst string literal."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# The links a page lists its files with ("Files: [CSV](tables/best.csv) · [MD](...)."): the PDF stands alone.
FILE_LINKS = re.compile(r"\s*Files: \[[^\]]+\]\([^)\s]+\)(?: · \[[^\]]+\]\([^)\s]+\))*\.?")
INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)")


def inline(text: str) -> str:
    """The little Markdown the report's own text uses (`code`, **bold** and [links](href)) as Typst
    markup, every other character escaped; links to the report's own files become their text."""
    text = re.sub(r"\s*\n\s*", " ", FILE_LINKS.sub("", text))
    parts, end = [], 0
    for match in INLINE.finditer(text):
        parts.append(escape(text[end:match.start()]))
        code, bold, label, href = match.groups()
        if code is not None:  # `;` ends the call, so a following `.` or `(` stays text
            parts.append(f"#raw({string(_breakable(code))});")
        elif bold is not None:
            parts.append(f"#strong[{inline(bold)}];")
        elif re.match(r"https?://", href):
            parts.append(f"#link({string(href)})[{inline(label)}];")
        else:
            parts.append(inline(label))
        end = match.end()
    return "".join(parts) + escape(text[end:])


# --------------------------------------------------------------------------- blocks -> Typst


def render_typst(blocks: list[tuple], folder: Path | None = None) -> str:
    """The page's blocks as one Typst document. Each ("img", path, title) becomes a numbered figure
    captioned with its title and the paragraph after it (the "Figure N. title" heading before it is
    dropped: Typst numbers the figures); each table a numbered table captioned with the heading it
    stands under. `folder` is where the image paths are relative to (to size the figures)."""
    blocks = _reordered(blocks)
    title = next((payload[0] for kind, *payload in blocks if kind == "h1"), "Study report")
    parts, heading, index = [PREAMBLE.replace("{title}", string(_plain(title, code=True)))], "", 0
    while index < len(blocks):
        kind, *payload = blocks[index]
        following = blocks[index + 1] if index + 1 < len(blocks) else ("",)
        index += 1
        if kind == "h3" and following[0] == "img" and re.fullmatch(r"Figure \d+\. .*", payload[0]):
            continue
        if kind in ("h2", "h3"):
            heading = payload[0]
            parts.append("=" * (int(kind[1]) - 1) + " " + inline(heading))
        elif kind == "p" and inline(payload[0]).strip():
            parts += [inline(paragraph) for paragraph in re.split(r"\n\s*\n", payload[0])]
        elif kind == "ul":
            parts.append("\n".join(f"- {inline(item)}" for item in payload[0]))
        elif kind == "img":
            caption = f"#strong[{inline(_sentence(payload[1]))}]"
            if following[0] == "p":
                caption += " " + inline(following[1])
                index += 1
            parts.append(_figure(payload[0], caption, folder))
        elif kind == "table":
            parts.append(_table(payload[0], inline(_plain(heading) or "Table")))
    return "\n\n".join(parts) + "\n"


def _reordered(blocks: list[tuple]) -> list[tuple]:
    """The sections of LATE_SECTIONS (warnings, caveats, set-up) moved after the results and figures."""
    sections: list[list[tuple]] = [[]]
    for block in blocks:
        if block[0] == "h2":
            sections.append([])
        sections[-1].append(block)
    late = [i for i, s in enumerate(sections) if i and s[0][1].startswith(LATE_SECTIONS)]
    order = [i for i in range(len(sections)) if i not in late] + late
    return [block for i in order for block in sections[i]]


def _figure(link: str, caption: str, folder: Path | None) -> str:
    """The image at its print size (figures are drawn at 1 / PRINT_SCALE of it, so that their
    text is 8 pt or more on paper), shrunk to fit the text column and MAX_FIGURE_CM of height."""
    size = _png_size(folder / link) if folder is not None else None
    if size is None:
        return f"#figure(image({string(link)}, width: 100%), kind: image, caption: [{caption}])"
    width, height = size[0] * PRINT_SCALE, size[1] * PRINT_SCALE
    width *= min(1.0, TEXT_WIDTH_CM / width, MAX_FIGURE_CM / height)
    return f"#figure(image({string(link)}, width: {width:.2f}cm), kind: image, caption: [{caption}])"


def _table(frame: pd.DataFrame, caption: str) -> str:
    """A booktabs-like table, numbers right-aligned. A table wider than WIDE columns with fewer rows
    than columns (the best trial per value: ~17 columns, 3 rows) is turned on its side to fit A4."""
    text = frame.astype(str)
    first = text.columns[0] if len(text.columns) else None
    if len(text.columns) > WIDE and len(text) < len(text.columns) and text[first].is_unique:
        text = text.set_index(first).T.rename_axis(first).reset_index()
        right = [False] + [True] * (len(text.columns) - 1)
    else:
        right = [bool(text[c].map(lambda s: s == "" or _is_number(s)).all()) for c in text]
    header = ", ".join(f"[#strong[{escape(c).replace('_', '_' + ZWSP)}]]" for c in map(str, text.columns))
    rows = "\n".join("  " + ", ".join(f"[{escape(cell)}]" for cell in row) + ","
                     for row in text.itertuples(index=False))
    align = ", ".join("right" if r else "left" for r in right)
    breakable = "#show figure: set block(breakable: true)\n" if len(text) > LONG_TABLE else ""
    return (f"#[\n{breakable}#figure(kind: table, caption: [{caption}], {{\n"
            f"  set text(size: {6 if len(text.columns) > WIDE else 8}pt, hyphenate: false)\n"
            f"  table(columns: {len(text.columns)}, align: ({align},), stroke: none, inset: (x: 4pt, y: 2.5pt),\n"
            f"  table.hline(), table.header({header}), table.hline(stroke: 0.5pt),\n{rows}\n  table.hline())\n}})\n]")


def _breakable(code: str) -> str:
    """Long paths and names (over LONG characters) may wrap after a `/` or `_`; short ones stay
    clean, so a command copied out of the PDF still runs."""
    return re.sub(rf"\S{{{LONG},}}", lambda m: re.sub(r"([/_])", "\\1" + ZWSP, m.group()), code)


def _plain(text: str, code: bool = False) -> str:
    """Text without the report's bold and links (for table captions); with `code`, without its
    `code` marks too (for the document title, a plain string)."""
    text = re.sub(r"\*\*([^*]+)\*\*|\[([^\]]+)\]\([^)\s]+\)", lambda m: m.group(1) or m.group(2), text)
    return re.sub(r"`([^`]+)`", r"\1", text) if code else text


def _sentence(text: str) -> str:
    return text if text.rstrip().endswith((".", "?", "!", ":")) else text.rstrip() + "."


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _png_size(path: Path) -> tuple[float, float] | None:
    """Width and height of a PNG in cm, from its header and resolution (a PNG without one is taken
    as a column wide); None for another format or a missing file."""
    try:
        with open(path, "rb") as file:
            if file.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            pixels, per_cm = None, None
            while len(head := file.read(8)) == 8:
                length, kind = struct.unpack(">I4s", head)
                if kind == b"IDAT":
                    break
                body = file.read(length + 4)[:length]  # and its CRC
                if kind == b"IHDR":
                    pixels = struct.unpack(">II", body[:8])
                elif kind == b"pHYs" and body[8:9] == b"\x01":  # pixels per metre
                    per_cm = [count / 100 for count in struct.unpack(">II", body[:8])]
    except (OSError, struct.error):
        return None
    if not pixels or not pixels[0]:
        return None
    if not per_cm or not all(per_cm):
        return TEXT_WIDTH_CM, TEXT_WIDTH_CM * pixels[1] / pixels[0]
    return pixels[0] / per_cm[0], pixels[1] / per_cm[1]


# --------------------------------------------------------------------------- compiling


def write_pdf(blocks: list[tuple], folder: Path) -> list[Path]:
    """Write `report.typ` and compile it into `report.pdf` in `folder` (where the blocks' image
    paths are relative to); returns both paths. Each file is written under a temporary name and
    renamed, so neither is ever half-written. Raises ReportError, writing neither, when Typst fails."""
    source = render_typst(blocks, folder)
    try:
        pdf = typst.compile(source.encode(), root=str(folder), format="pdf", ignore_system_fonts=True)
    except typst.TypstError as err:
        reason = " ".join((getattr(err, "message", "") or str(err)).split()) or type(err).__name__
        raise ReportError(f"report.pdf could not be compiled by Typst: {reason}") from None
    written = []
    for name, data in (("report.typ", source.encode()), ("report.pdf", pdf)):
        temporary = folder / f".{name}.partial"
        try:
            temporary.write_bytes(data)
            os.replace(temporary, folder / name)
        finally:
            temporary.unlink(missing_ok=True)
        written.append(folder / name)
    return written
