"""The sign-in sheet as A4 images (Pillow): a PNG per page, or all pages as one PDF."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from comfy_multi.admin.sheet import CARDS_PER_PAGE, Card, pages

DPI = 150
PAGE = (1240, 1754)  # A4 at 150 dpi
MARGIN = 60
COLUMNS, ROWS = 2, CARDS_PER_PAGE // 2
QR_PX = 250
NAME_PX, TEXT_PX, MIN_TEXT_PX = 44, 20, 12
INK, RULE = (0, 0, 0), (170, 170, 170)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _fitted(draw: ImageDraw.ImageDraw, text: str, width: int, size: int) -> Font:
    """The largest font down to MIN_TEXT_PX that fits `text` in `width`."""
    while size > MIN_TEXT_PX and draw.textlength(text, font=_font(size)) > width:
        size -= 1
    return _font(size)


def _qr_image(card: Card, size: int) -> Image.Image:
    out = io.BytesIO()
    card.qr().save(out, kind="png", scale=10, border=2)
    out.seek(0)
    with Image.open(out) as img:
        return img.convert("L").resize((size, size), Image.Resampling.NEAREST)


def _draw_card(page: Image.Image, card: Card, box: tuple[int, int, int, int]) -> None:
    left, top, right, _ = box
    draw = ImageDraw.Draw(page)
    draw.rectangle(box, outline=RULE, width=2)
    width = right - left - 40
    centre = (left + right) // 2
    y = top + 24
    name_font = _fitted(draw, card.name, width, NAME_PX)
    draw.text((centre, y), card.name, font=name_font, fill=INK, anchor="mt")
    y += NAME_PX + 16
    page.paste(_qr_image(card, QR_PX), (centre - QR_PX // 2, y))
    y += QR_PX + 12
    hint = "Scan to sign in (works once), or open"
    draw.text((centre, y), hint, font=_font(TEXT_PX - 4), fill=INK, anchor="mt")
    y += TEXT_PX + 6
    url_font = _fitted(draw, card.workspace_url, width, TEXT_PX)
    draw.text((centre, y), card.workspace_url, font=url_font, fill=INK, anchor="mt")


def render_page(cards: list[Card]) -> Image.Image:
    page = Image.new("RGB", PAGE, "white")
    cell_w = (PAGE[0] - 2 * MARGIN) // COLUMNS
    cell_h = (PAGE[1] - 2 * MARGIN) // ROWS
    for i, card in enumerate(cards[:CARDS_PER_PAGE]):
        col, row = i % COLUMNS, i // COLUMNS
        left, top = MARGIN + col * cell_w, MARGIN + row * cell_h
        _draw_card(page, card, (left + 8, top + 8, left + cell_w - 8, top + cell_h - 8))
    return page


def png(cards: list[Card]) -> bytes:
    """One page of the sheet (the first CARDS_PER_PAGE cards) as PNG."""
    out = io.BytesIO()
    render_page(cards).save(out, format="PNG", dpi=(DPI, DPI))
    return out.getvalue()


def pdf(cards: list[Card]) -> bytes:
    """Every page of the sheet as one PDF."""
    images = [render_page(chunk) for chunk in pages(cards)]
    out = io.BytesIO()
    images[0].save(out, format="PDF", resolution=DPI, save_all=True, append_images=images[1:])
    return out.getvalue()
