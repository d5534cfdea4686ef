"""Demo inputs of the documents family: a PDF and a DOCX for text-extractor -> sentiment-analyzer.

Both are generated here, byte for byte the same on every run (no timestamps of "now", no random
ids): the PDF with pypdf's writer and hand-written content streams (Helvetica, WinAnsi
encoding, which pypdf's `extract_text` reads back), the DOCX with python-docx, its core
properties and ZIP entry dates pinned. `pdf_document` and `docx_document` are also what the
documents tests build their fixtures with.
"""

from __future__ import annotations

import io
import textwrap
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime

from make_inputs import DemoInput

PDF_CONTENT_TYPE = "application/pdf"
DOCX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCUMENTS_CHAIN = (
    "eventfn.storage.object.created.v1",
    "eventfn.document.text.extracted.v1",
    "eventfn.document.sentiment.scored.v1",
)
DOCUMENTS_SERVICES = ("storage-source", "text-extractor", "sentiment-analyzer")
PINNED_TIME = datetime(2026, 1, 1, tzinfo=UTC)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_PAGE_WIDTH, _PAGE_HEIGHT, _MARGIN = 612, 792, 72  # US Letter, 1 inch margins, in points
_FONT_SIZE, _LEADING, _WRAP = 11, 15, 88

QUARTERLY_REVIEW: tuple[tuple[str, ...], ...] = (
    (
        "Quarterly review, third quarter",
        "This was an excellent quarter. Revenue grew strongly to a record high, and our "
        "customers are delighted with the new platform. The team did a wonderful job and we "
        "are proud of what they achieved.",
        "Customer satisfaction improved again: support tickets were resolved faster than ever, "
        "and the reviews we received were warm, generous and encouraging.",
    ),
    (
        "Risks and problems",
        "The hardware unit had a terrible quarter. Losses were painful, a supplier failed us, "
        "and the recall was an awful, costly mistake that hurt our reputation.",
        "We are disappointed and worried about the delays in the east region, where angry "
        "customers complained about broken devices and poor service.",
    ),
    (
        "Outlook",
        "Despite these problems we are confident and optimistic. The pipeline is strong, the "
        "new products are a great success, and we expect healthy, happy growth next year.",
    ),
)

CUSTOMER_FEEDBACK: tuple[str, ...] = (
    "Customer feedback, week 42",
    "The delivery was late, the box was damaged and two parts were missing. This is "
    "unacceptable and very frustrating.",
    "Support never answered my emails. I am angry and disappointed, and I regret buying this.",
    "The installation guide is confusing and the app keeps crashing. Terrible experience.",
    "The only good thing: the replacement courier was friendly and helpful.",
)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _page_stream(paragraphs: Sequence[str]) -> bytes:
    """A content stream drawing `paragraphs` as wrapped lines, a blank line between them."""
    top = _PAGE_HEIGHT - _MARGIN
    ops = ["BT", f"/F1 {_FONT_SIZE} Tf", f"{_LEADING} TL", f"{_MARGIN} {top} Td"]
    for paragraph in paragraphs:
        ops += [f"({_pdf_escape(line)}) Tj T*" for line in textwrap.wrap(paragraph, _WRAP)]
        ops.append("T*")
    ops.append("ET")
    return "\n".join(ops).encode("cp1252")  # WinAnsiEncoding is cp1252


def pdf_document(pages: Sequence[Sequence[str]], *, title: str) -> bytes:
    """A PDF with one page per item of `pages`, each a sequence of paragraphs (cp1252 text)."""
    from pypdf import PdfWriter
    from pypdf.generic import ContentStream, DictionaryObject, NameObject

    writer = PdfWriter()
    for paragraphs in pages:
        page = writer.add_blank_page(_PAGE_WIDTH, _PAGE_HEIGHT)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )
        fonts = DictionaryObject({NameObject("/F1"): font})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        content = ContentStream(None, writer)
        content.set_data(_page_stream(paragraphs))
        page.replace_contents(content)
    writer.add_metadata({"/Title": title, "/Producer": "eventfn demo"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_document(paragraphs: Sequence[str], *, title: str) -> bytes:
    """A DOCX whose first paragraph is a heading and the others body paragraphs."""
    import docx

    document = docx.Document()
    document.add_heading(paragraphs[0], level=1)
    for paragraph in paragraphs[1:]:
        document.add_paragraph(paragraph)
    properties = document.core_properties
    properties.title = title
    properties.author = properties.last_modified_by = "eventfn demo"
    properties.created = properties.modified = PINNED_TIME
    properties.revision = 1
    out = io.BytesIO()
    document.save(out)
    return pinned_zip(out.getvalue())


def pinned_zip(package: bytes) -> bytes:
    """`package` re-zipped with fixed entry dates and attributes (python-docx stamps "now")."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            pinned = zipfile.ZipInfo(entry.filename, date_time=_ZIP_DATE)
            pinned.compress_type = zipfile.ZIP_DEFLATED
            pinned.external_attr = 0o644 << 16
            target.writestr(pinned, source.read(entry.filename))
    return out.getvalue()


def quarterly_review_pdf() -> DemoInput:
    """A three-page PDF: two clearly positive pages around a clearly negative one."""
    return DemoInput(
        name="quarterly-review",
        kind="upload",
        file="uploads/quarterly-review.pdf",
        content=pdf_document(QUARTERLY_REVIEW, title="Quarterly review"),
        description="a 3-page PDF: text-extractor (pypdf) -> sentiment-analyzer (positive)",
        expect=DOCUMENTS_CHAIN,
        requires=DOCUMENTS_SERVICES,
        key="documents/quarterly-review.pdf",
        content_type=PDF_CONTENT_TYPE,
    )


def customer_feedback_docx() -> DemoInput:
    """A DOCX of mostly angry customer feedback."""
    return DemoInput(
        name="customer-feedback",
        kind="upload",
        file="uploads/customer-feedback.docx",
        content=docx_document(CUSTOMER_FEEDBACK, title="Customer feedback"),
        description="a DOCX: text-extractor (python-docx) -> sentiment-analyzer (negative)",
        expect=DOCUMENTS_CHAIN,
        requires=DOCUMENTS_SERVICES,
        key="documents/customer-feedback.docx",
        content_type=DOCX_CONTENT_TYPE,
    )
