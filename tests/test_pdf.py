"""report.pdf: the page's blocks as Typst (markup escaped, figures and tables numbered), and a real
report's PDF read back with pypdf: A4, every figure embedded and labelled, the verdict in it."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from pypdf import PdfReader

from study.reporting import pdf
from study.reporting.build import build_report
from study.reporting.figures import PRINT_SCALE
from study.reporting.load import ReportError
from study.search.sweep import run_sweep
from study.spec.sweep_file import load_sweep

ADVERSARIAL = r"a#b $x$ *s* _e_ @ref <lab> \n [c] ` ~ // not a comment /* 1. -- = + {x} & \u{41}"
PLAIN = ADVERSARIAL.replace("*", "").replace("`", "")  # what fits in **bold** and `code`
A4 = (595.28, 841.89)  # points


def text_of(reader: PdfReader) -> str:
    return squeezed("".join(page.extract_text() for page in reader.pages))


def squeezed(text: str) -> str:
    """Text without the spaces and line breaks a layout adds (and the break opportunities it was given),
    with Typst's bold hyphen (extracted as a soft hyphen) and its typographic apostrophe made plain."""
    return re.sub(r"[\s\u200b]+", "", text).replace("\u00ad", "-").replace("’", "'")


def loose(text: str) -> str:
    """Squeezed text without hyphens, which hyphenation adds at line ends."""
    return squeezed(text).replace("-", "")


def image_count(reader: PdfReader) -> int:
    """Image XObjects drawn on the pages, looking inside form XObjects, each counted once."""
    seen: set[int] = set()

    def visit(resources) -> None:
        resources = resources.get_object() if resources is not None else {}
        xobjects = resources["/XObject"].get_object() if "/XObject" in resources else {}
        for ref in xobjects.values():
            obj = ref.get_object()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj["/Subtype"] == "/Image":
                images.append(obj)
            elif obj["/Subtype"] == "/Form":
                visit(obj.get("/Resources"))

    images: list = []
    for page in reader.pages:
        visit(page.get("/Resources"))
    return len(images)


def png(path, height: int, width: int, dpi: int) -> None:
    import matplotlib.pyplot

    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.pyplot.imsave(path, [[0.0] * width] * height, dpi=dpi)


# --------------------------------------------------------------------------- blocks -> Typst


def test_escape_shows_every_markup_character_as_itself(tmp_path):
    assert pdf.escape("a#b_c") == r"a\#b\_c"
    assert pdf.escape("1. first") == r"1\. first"  # not a numbered list
    table = pd.DataFrame({ADVERSARIAL: [ADVERSARIAL], "n": ["3"]})
    blocks = [("h1", ADVERSARIAL), ("h2", ADVERSARIAL), ("p", ADVERSARIAL), ("ul", [ADVERSARIAL]),
              ("table", table), ("p", f"**{PLAIN}** and `{PLAIN}`")]
    written = pdf.write_pdf(blocks, tmp_path)
    assert written == [tmp_path / "report.typ", tmp_path / "report.pdf"]
    text = text_of(PdfReader(tmp_path / "report.pdf"))
    # title, heading, paragraph, list item, table caption, header and cell; then bold and code
    assert text.count(squeezed(ADVERSARIAL)) == 7
    assert text.count(squeezed(PLAIN)) == 2


def test_blocks_become_numbered_figures_and_tables_with_their_captions(tmp_path):
    png(tmp_path / "figures" / "wide.png", 200, 300, dpi=50)  # 15.2 x 10.2 cm
    png(tmp_path / "figures" / "tall.png", 300, 100, dpi=10)  # 25.4 x 76.2 cm
    blocks = [
        ("h1", "Study report: s"), ("h2", "Verdict"), ("p", "**GRU wins.**"),
        ("h2", "Warnings"), ("ul", ["few trials"]),
        ("h2", "Best trial per cell"), ("table", pd.DataFrame({"cell": ["GRU"], "best_val_accuracy": ["0.9"]})),
        ("p", "Scores. Files: [CSV](tables/best.csv) · [MD](tables/best.md)."),
        ("h2", "Figures"),
        ("h3", "Figure 1. Wide one"), ("img", "figures/wide.png", "Wide one"),
        ("p", "Its caption. Files: [PNG](figures/wide.png)."),
        ("h3", "Figure 2. Tall one"), ("img", "figures/tall.png", "Tall one"), ("p", "See [the docs](https://x.org/a)."),
    ]
    source = pdf.render_typst(blocks, tmp_path)
    assert source.count("#figure(") == 3 and "kind: table, caption: [Best trial per cell]" in source
    # At its print size (drawn at 1 / PRINT_SCALE of it); a large one shrunk to 12 cm of height.
    assert (f'#figure(image("figures/wide.png", width: {15.24 * PRINT_SCALE:.2f}cm), kind: image, '
            'caption: [#strong[Wide one.] Its caption.])') in source
    assert 'image("figures/tall.png", width: 4.00cm)' in source
    assert "Figure 1. Wide one" not in source and "Files:" not in source and "tables/best.csv" not in source
    assert '#link("https://x.org/a")[the docs];' in source
    assert source.index("= Figures") < source.index("= Warnings")  # warnings after the results
    assert '// author: "Your Name",' in source.splitlines()[5]  # near the top, for the student
    pdf.write_pdf(blocks, tmp_path)
    reader = PdfReader(tmp_path / "report.pdf")
    text = text_of(reader)
    assert "Figure1:Wideone.Itscaption." in text and "Figure2:Tallone." in text and "Table1:Besttrialpercell" in text
    assert image_count(reader) == 2


def test_a_failed_compile_is_one_report_error_and_writes_nothing(tmp_path):
    with pytest.raises(ReportError, match=r"^report.pdf could not be compiled by Typst: .*not found") as caught:
        pdf.write_pdf([("h1", "t"), ("img", "figures/missing.png", "Missing")], tmp_path)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- a real report


def test_a_reports_pdf_is_a4_with_every_figure_labelled_and_the_verdict(tiny_sweep, stores, scripted_training,
                                                                       tmp_path, monkeypatch):
    scripted_training()
    path = tiny_sweep(trials=6, epochs=2)
    run_sweep(load_sweep(path), **stores)
    report = build_report(str(path), out=tmp_path / "report", formats=("png",), **stores)

    assert {report.out / "report.pdf", report.out / "report.typ"} <= set(report.files)
    assert report.files[-1].name == "report.pdf"  # published last, with the pages
    reader = PdfReader(report.out / "report.pdf")
    assert len(reader.pages) >= 1
    for page in reader.pages:
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(A4, abs=0.5)
    assert report.figures and image_count(reader) == len(report.figures)
    text = text_of(reader)
    assert loose(report.verdict.headline) in loose(text)
    for number in range(1, len(report.figures) + 1):
        assert f"Figure{number}:" in text, number
    assert "Table1:" in text and "Set-up" in text and "Software(recordedbythesweep):" in text
    assert "// author:" in (report.out / "report.typ").read_text()

    # A PDF that cannot be compiled fails the report and leaves the previous one whole.
    before = {p: p.read_bytes() for p in report.out.rglob("*") if p.is_file()}
    monkeypatch.setattr(pdf, "render_typst", lambda blocks, folder=None: "#broken(")
    with pytest.raises(ReportError, match="could not be compiled by Typst"):
        build_report(str(path), out=report.out, formats=("png",), **stores)
    assert {p: p.read_bytes() for p in report.out.rglob("*") if p.is_file()} == before


ACROSS = """
    name: {name}
    task: {task}
    space:
      cell: {{role: scientific, choices: [GRU, LSTM]}}
      units: {{value: 4}}
      learning_rate: {{low: 1.0e-3, high: 1.0e-2, log: true}}
    trials: 4
    epochs: 2
    sampler: random
    log_models: false
"""


@pytest.mark.slow  # two studies' reports, then the cross-task page: ~15 s on 2 cores
def test_the_cross_task_page_has_its_pdf_too(write_sweep, stores, scripted_training, tmp_path, monkeypatch):
    from study.reporting.across_page import build_across_report

    scripted_training()
    monkeypatch.chdir(tmp_path)  # each study's own report goes to reports/<study>/
    paths = [write_sweep(ACROSS.format(name=name, task=task), f"{name}.yaml")
             for name, task in (("pdf-across-digits", "{name: digits}"), ("pdf-across-sine", "{name: sine, length: 200}"))]
    for path in paths:
        run_sweep(load_sweep(path), **stores)
    result = build_across_report([str(p) for p in paths], out=tmp_path / "across", formats=("png",), **stores)

    assert {result.out / "report.pdf", result.out / "report.typ"} <= set(result.files)
    reader = PdfReader(result.out / "report.pdf")
    assert image_count(reader) == 2  # the IQM and the probability of improvement
    text = loose(text_of(reader))
    assert loose(result.verdict) in text and "Figure1:" in text and "Figure2:" in text
